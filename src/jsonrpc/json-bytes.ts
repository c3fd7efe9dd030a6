/**
 * Writing the few JSON pieces evmux builds on every call (ids, fixed prefixes) straight into a
 * buffer. `Buffer#copy` and `Buffer#write` validate their offsets in JS and then cross into C++ for a
 * handful of bytes, and `JSON.stringify` of a small integer sets up a whole serializer; a call made
 * several of each (callgrind: about 300 instructions per copy).
 */
import { Buffer } from 'node:buffer';

const ZERO = 0x30;

/** How every request and response evmux writes starts, and how nodes start theirs: the id follows. */
export const ID_PREFIX = Buffer.from('{"jsonrpc":"2.0","id":');

/** Digits of a non-negative safe integer. */
export function digitCount(value: number): number {
  let digits = 1;
  for (let rest = value; rest >= 10; rest = Math.floor(rest / 10)) digits++;
  return digits;
}

/** Writes a non-negative safe integer's `digits` decimal digits at `at`; returns the offset after them. */
export function putDigits(target: Buffer, at: number, value: number, digits: number): number {
  for (let k = at + digits - 1, rest = value; k >= at; k--, rest = Math.floor(rest / 10)) target[k] = ZERO + (rest % 10);
  return at + digits;
}

/** Copies `source` into `target` at `at`; returns the offset after it. Bounds are the caller's sizing. */
export function putBytes(target: Buffer, at: number, source: Buffer): number {
  // A few bytes one by one; from about 16 on, TypedArray#set (one builtin call, a memmove) is cheaper.
  if (source.length > 16) target.set(source, at);
  else for (let i = 0; i < source.length; i++) target[at + i] = source[i]!;
  return at + source.length;
}

/** True for the ids written digit by digit: non-negative safe integers, what nearly every client sends. */
export function isDigitsId(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
