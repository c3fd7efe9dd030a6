/**
 * Bodies nested too deeply to be worth parsing. V8's `JSON.parse` costs about 0.3 µs per level of
 * nesting, some 50 times a flat string's cost per byte: a 5 MiB body of `[` held the event loop, and
 * so every other client, for 1.6 s, only to be refused after. A body that nests deeper than any
 * request evmux forwards (a batch, a request object, params MAX_PARAMS_DEPTH deep) is found by one
 * pass over its text that stops at the first level too many, and refused unread. On a body it lets
 * through, the pass costs about half of what `JSON.parse` then does on a large batch, next to
 * nothing on a blob transaction's hex.
 */
import { MAX_PARAMS_DEPTH } from './forwardable-params.js';

/**
 * Shorter bodies are parsed without the scan, which small calls, the hot path, would pay for
 * nothing: nested all the way, 16 KiB costs `JSON.parse` about 3 ms.
 */
export const DEPTH_SCAN_FROM = 16 * 1024;

/** The deepest a request evmux forwards can nest: a batch's array, the request object and its params. */
export const MAX_BODY_DEPTH = MAX_PARAMS_DEPTH + 2;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/**
 * Whether `text`, read as JSON, opens more than `limit` arrays and objects inside one another
 * before it closes them; brackets inside strings do not count. It need not be valid JSON: where it
 * is not, `JSON.parse` stops at the first character that breaks the grammar, and up to there this
 * count is the parser's depth.
 */
export function nestsDeeperThan(text: string, limit: number): boolean {
  let depth = 0;
  for (let at = 0; at < text.length; at++) {
    const c = text.charCodeAt(at);
    if (c === QUOTE) {
      at = stringEndAt(text, at);
      if (at < 0) return false;
    } else if (c === OPEN_BRACKET || c === OPEN_BRACE) {
      if (++depth > limit) return true;
    } else if (c === CLOSE_BRACKET || c === CLOSE_BRACE) {
      depth--;
    }
  }
  return false;
}

/**
 * Index of the quote that closes the string opened at `open`, or -1 if the text ends first. Its
 * content is passed over by indexOf (a builtin's fast search: a blob transaction's hex is most of a
 * large body); a quote after an odd run of backslashes is escaped and the search goes on.
 */
function stringEndAt(text: string, open: number): number {
  let close = text.indexOf('"', open + 1);
  while (close > 0 && escapedAt(text, close)) close = text.indexOf('"', close + 1);
  return close;
}

/** Whether the character at `at` follows an odd number of backslashes. */
function escapedAt(text: string, at: number): boolean {
  let backslashes = 0;
  while (text.charCodeAt(at - 1 - backslashes) === BACKSLASH) backslashes++;
  return backslashes % 2 === 1;
}
