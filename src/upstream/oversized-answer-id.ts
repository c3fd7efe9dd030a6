/**
 * Which call a message skipped for its size answers (frame-reader.ts hands over its first
 * bytes, then its last). Nodes put the id first (geth, anvil, Erigon, reth: `{"jsonrpc":"2.0","id":7,"result":…`)
 * or last (Nethermind: `…,"result":…,"id":7}`); either way it is the top-level object's, never one
 * inside the result: before the first nested object or array, or after the last one closes.
 */
import type { Buffer } from 'node:buffer';

/** The id leads the message, before any nested object or array (which a result or error opens). */
const LEADING_ID = /^\s*\{[^{[]*?"id"\s*:\s*(\d{1,15})\s*[,}]/;
/** The id ends the message: the top-level object closes right after it. */
const TRAILING_ID = /[,{]\s*"id"\s*:\s*(\d{1,15})\s*\}\s*$/;

/** The numeric id leading a skipped message, from its first bytes; undefined when they show none. */
export function leadingId(head: Buffer): number | undefined {
  return matchedId(LEADING_ID, head);
}

/** The numeric id ending a skipped message, from its last bytes; undefined when they show none. */
export function trailingId(tail: Buffer): number | undefined {
  return matchedId(TRAILING_ID, tail);
}

function matchedId(pattern: RegExp, bytes: Buffer): number | undefined {
  const match = pattern.exec(bytes.toString('latin1'));
  return match === null ? undefined : Number(match[1]);
}
