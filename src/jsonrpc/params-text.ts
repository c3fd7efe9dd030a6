/**
 * The exact text of a request's `"params"` value, found in the request's JSON text, so that a plain
 * call goes to the node with the client's own params instead of `JSON.stringify` of their parse.
 * Serializing even `["0x…","latest"]` costs V8 about 3,000 instructions (callgrind), several times
 * what this scan over the whole request costs; and the node then sees the client's numbers digit
 * for digit, where a parse would have rounded integers past 2^53.
 *
 * The text must already have parsed as a JSON object: the scan trusts its grammar and only tracks
 * strings and nesting. It gives up (undefined) on anything it would have to decode to be sure of,
 * such as a key written with escapes, and the caller serializes the parsed params instead.
 * memberText finds any other member the same way (request-id.ts reads ids with it).
 */

import { stringEndAt } from './json-string-end.js';

const QUOTE = 0x22;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const SPACE = 0x20;

/** `"params"`'s value in a request object's text; the last one when the key repeats, as `JSON.parse` takes it. */
export function paramsText(text: string): string | undefined {
  // Without escapes every string ends at the next quote, found by indexOf (a builtin's fast search)
  // instead of a loop over its characters. Requests with escapes (rare in Ethereum's hex and tags)
  // are left to the caller: `"par\\u0061ms"` is `params` to a parser.
  if (text.indexOf('\\') !== -1) return undefined;
  const last = text.lastIndexOf('"params"');
  if (last < 0) return undefined;
  return lastMember(text, last) ?? scanMembers(text, 'params');
}

/**
 * The common layouts, where no member after params holds the text `"params"` (viem, ethers,
 * web3.js): the last `"params"` followed by a colon is a key (without escapes every quote delimits a
 * string), and when whole members and then the closing brace follow its value, that brace closes
 * the request itself, so the key is the request's own.
 */
function lastMember(text: string, key: number): string | undefined {
  const colon = skipSpace(text, key + 8);
  if (text.charCodeAt(colon) !== COLON) return undefined;
  const valueStart = skipSpace(text, colon + 1);
  const valueEnd = valueEndAt(text, valueStart);
  if (valueEnd < 0) return undefined;
  let at = skipSpace(text, valueEnd);
  while (text.charCodeAt(at) === COMMA) {
    at = skipSpace(text, at + 1);
    if (text.charCodeAt(at) !== QUOTE) return undefined;
    at = skipSpace(text, text.indexOf('"', at + 1) + 1);
    if (at === 0 || text.charCodeAt(at) !== COLON) return undefined;
    const end = valueEndAt(text, skipSpace(text, at + 1));
    if (end < 0) return undefined;
    at = skipSpace(text, end);
  }
  if (text.charCodeAt(at) !== CLOSE_BRACE || skipSpace(text, at + 1) !== text.length) return undefined;
  return text.slice(valueStart, valueEnd);
}

/**
 * The text of the request member named `key` (the last one when the key repeats, as `JSON.parse`
 * takes it), in any layout: the request's members one by one. Undefined when the text has escapes
 * (a key could be written with them) or is not an object.
 */
export function memberText(text: string, key: string): string | undefined {
  return text.indexOf('\\') === -1 ? scanMembers(text, key) : undefined;
}

/** memberText on text known to have no escapes. */
function scanMembers(text: string, key: string): string | undefined {
  let at = skipSpace(text, 0);
  if (text.charCodeAt(at) !== OPEN_BRACE) return undefined;
  at = skipSpace(text, at + 1);
  let found: string | undefined;
  while (text.charCodeAt(at) === QUOTE) {
    const keyEnd = text.indexOf('"', at + 1);
    if (keyEnd < 0) return undefined;
    const isKey = keyEnd - at - 1 === key.length && text.startsWith(key, at + 1);
    at = skipSpace(text, keyEnd + 1);
    if (text.charCodeAt(at) !== COLON) return undefined;
    const valueStart = skipSpace(text, at + 1);
    const valueEnd = valueEndAt(text, valueStart);
    if (valueEnd < 0) return undefined;
    if (isKey) found = text.slice(valueStart, valueEnd);
    at = skipSpace(text, valueEnd);
    if (text.charCodeAt(at) !== COMMA) break;
    at = skipSpace(text, at + 1);
  }
  return text.charCodeAt(at) === CLOSE_BRACE ? found : undefined;
}

/**
 * The text of each request in a batch's text, in order, for paramsText and answerId; undefined where
 * the scan gives up. The text must already have parsed as a JSON array. Escapes in one request leave
 * the others' texts whole: paramsText and memberText refuse only the texts that hold them.
 */
export function batchTexts(text: string): string[] | undefined {
  const escapes = text.indexOf('\\') !== -1;
  let at = skipSpace(text, 0);
  if (text.charCodeAt(at) !== OPEN_BRACKET) return undefined;
  at = skipSpace(text, at + 1);
  const items: string[] = [];
  while (at < text.length && text.charCodeAt(at) !== CLOSE_BRACKET) {
    const end = valueEndAt(text, at, escapes);
    if (end < 0) return undefined;
    items.push(text.slice(at, end));
    at = skipSpace(text, end);
    if (text.charCodeAt(at) === COMMA) at = skipSpace(text, at + 1);
  }
  return items;
}

/** JSON's whitespace: space, tab, line feed and carriage return, all at or below 0x20. */
function skipSpace(text: string, at: number): number {
  while (at < text.length && text.charCodeAt(at) <= SPACE) at++;
  return at;
}

/**
 * Index just past the value starting at `at`, or -1 if the text ends first. `escapes`: the text may
 * hold escapes, so a quote may be part of a string; without them (the common case) every string ends
 * at the next quote.
 */
function valueEndAt(text: string, at: number, escapes = false): number {
  const first = text.charCodeAt(at);
  if (first === QUOTE) {
    const close = stringEnd(text, at, escapes);
    return close < 0 ? -1 : close + 1;
  }
  if (first !== OPEN_BRACKET && first !== OPEN_BRACE) {
    // A number, true, false or null: it runs to the next separator.
    while (at < text.length) {
      const c = text.charCodeAt(at);
      if (c === COMMA || c === CLOSE_BRACE || c === CLOSE_BRACKET || c <= SPACE) return at;
      at++;
    }
    return -1;
  }
  let depth = 0;
  while (at < text.length) {
    const c = text.charCodeAt(at);
    if (c === QUOTE) {
      const close = stringEnd(text, at, escapes);
      if (close < 0) return -1;
      at = close + 1;
      continue;
    }
    if (c === OPEN_BRACKET || c === OPEN_BRACE) depth++;
    else if ((c === CLOSE_BRACKET || c === CLOSE_BRACE) && --depth === 0) return at + 1;
    at++;
  }
  return -1;
}

/** The quote closing the string opened at `open`; -1 if the text ends first. */
function stringEnd(text: string, open: number, escapes: boolean): number {
  return escapes ? stringEndAt(text, open) : text.indexOf('"', open + 1);
}
