// Byte-level lookups in JSON text without parsing it. The benchmark tools touch every message,
// so they find the one or two fields they need (id, method, number, extraData) with indexOf.
// Only valid for the flat, escape-free fields these tools look at.

const SPACE = 0x20;
const TAB = 0x09;
const CR = 0x0d;
const LF = 0x0a;
const QUOTE = 0x22;
const COMMA = 0x2c;
const RBRACE = 0x7d;
const RBRACKET = 0x5d;

const keyCache = new Map<string, Buffer>();

function keyBytes(key: string): Buffer {
  let b = keyCache.get(key);
  if (b === undefined) {
    b = Buffer.from(`"${key}":`, 'latin1');
    keyCache.set(key, b);
  }
  return b;
}

function isSpace(c: number | undefined): boolean {
  return c === SPACE || c === TAB || c === CR || c === LF;
}

/**
 * Bounds [start, end) of the raw value of the first `"key":` in buf, for scalar values
 * (a string keeps its quotes). Returns undefined when the key is absent.
 */
export function rawValueBounds(buf: Buffer, key: string, from = 0): [number, number] | undefined {
  const k = keyBytes(key);
  let at = buf.indexOf(k, from);
  // `"key" :` with a space is legal JSON; fall back to a slower search only when needed.
  if (at < 0) {
    const loose = buf.indexOf(`"${key}"`, from, 'latin1');
    if (loose < 0) return undefined;
    let p = loose + key.length + 2;
    while (isSpace(buf[p])) p++;
    if (buf[p] !== 0x3a) return undefined;
    at = p + 1 - k.length;
  }
  let s = at + k.length;
  while (isSpace(buf[s])) s++;
  if (buf[s] === QUOTE) {
    const e = buf.indexOf(QUOTE, s + 1);
    return e < 0 ? undefined : [s, e + 1];
  }
  let e = s;
  while (e < buf.length) {
    const c = buf[e];
    if (c === COMMA || c === RBRACE || c === RBRACKET || isSpace(c)) break;
    e++;
  }
  return e > s ? [s, e] : undefined;
}

/** The raw value text (strings keep their quotes), e.g. `17`, `"abc"`, `null`. */
export function rawValue(buf: Buffer, key: string): string | undefined {
  const b = rawValueBounds(buf, key);
  return b === undefined ? undefined : buf.toString('latin1', b[0], b[1]);
}

/** A string value without quotes. */
export function stringValue(buf: Buffer, key: string): string | undefined {
  const b = rawValueBounds(buf, key);
  if (b === undefined || buf[b[0]] !== QUOTE) return undefined;
  return buf.toString('latin1', b[0] + 1, b[1] - 1);
}

/** An integer value written as a JSON number (e.g. a numeric request id). */
export function intValue(buf: Buffer, key: string): number | undefined {
  const b = rawValueBounds(buf, key);
  if (b === undefined) return undefined;
  let n = 0;
  for (let i = b[0]; i < b[1]; i++) {
    const d = (buf[i] ?? 0) - 0x30;
    if (d < 0 || d > 9) return undefined;
    n = n * 10 + d;
  }
  return n;
}

/** A quantity written as a quoted hex string ("0x1a"), as Ethereum JSON-RPC does. */
export function hexValue(buf: Buffer, key: string): number | undefined {
  const b = rawValueBounds(buf, key);
  if (b === undefined || buf[b[0]] !== QUOTE || buf[b[0] + 1] !== 0x30) return undefined;
  let n = 0;
  for (let i = b[0] + 3; i < b[1] - 1; i++) {
    const c = buf[i] ?? 0;
    const d = c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x57;
    if (d < 0 || d > 15) return undefined;
    n = n * 16 + d;
  }
  return n;
}

/** First string in "params":[...] (a block tag, a hash, a subscription kind or id). */
export function firstStringParam(buf: Buffer): string | undefined {
  const p = buf.indexOf('"params"');
  if (p < 0) return undefined;
  const open = buf.indexOf(0x5b, p); // [
  if (open < 0) return undefined;
  let s = open + 1;
  while (isSpace(buf[s])) s++;
  if (buf[s] !== QUOTE) return undefined;
  const e = buf.indexOf(QUOTE, s + 1);
  return e < 0 ? undefined : buf.toString('latin1', s + 1, e);
}
