/**
 * Where a JSON string ends in a request's text, escapes and all, for the scans that read a request
 * without parsing it (body-shape.ts, params-text.ts).
 */

const BACKSLASH = 0x5c;

/**
 * Index of the quote that closes the string opened at `open`, or -1 if the text ends first. Its
 * content is passed over by indexOf (a builtin's fast search: a blob transaction's hex is most of a
 * large body); a quote after an odd run of backslashes is escaped and the search goes on.
 */
export function stringEndAt(text: string, open: number): number {
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
