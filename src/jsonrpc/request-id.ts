/**
 * The id a request is answered with. JSON-RPC answers carry the caller's id, but `JSON.parse` reads
 * every number as a double: an id past 2^53 (64-bit counters and random ids, as Go, Rust and Java
 * clients use) would come back rounded, and one past a double's range as null, so the caller could
 * not match the answer to its request. Such an id is answered with the caller's own text of it.
 * Ids that a double holds exactly (nearly all, and every id of viem, ethers and web3.js) stay numbers.
 */
import { memberText } from './params-text.js';
import type { JsonRpcId } from './types.js';

/** A numeric id as the caller wrote it, where the parsed number would be written differently. */
export class IdText {
  constructor(readonly text: string) {}
}

export type ReplyId = JsonRpcId | IdText;

/**
 * The id to answer a request with, given the id `JSON.parse` read and the request's own JSON text
 * when known. Without the text (or when the text has escapes, see memberText) the parsed id is used.
 */
export function answerId(id: JsonRpcId, requestText: string | undefined): ReplyId {
  if (typeof id !== 'number' || Number.isSafeInteger(id) || requestText === undefined) return id;
  const written = memberText(requestText, 'id');
  return written !== undefined && written !== JSON.stringify(id) ? new IdText(written) : id;
}

/** The id as JSON text. */
export function idJson(id: ReplyId): string {
  return id instanceof IdText ? id.text : JSON.stringify(id);
}
