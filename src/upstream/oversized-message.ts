/**
 * Which call an answer over `limits.maxAnswerBytes` belongs to. ws refuses such a message by a frame
 * header and closes the socket, and says nothing of what the message was. The bytes it had read by
 * then still begin the message: its first fragment, when the node split it into frames (geth writes
 * large messages in pieces), or else what follows the refused frame's header. Reading them is
 * reading ws's Receiver (`_receiver._fragments` and `_buffers`, ws 8); test/unit/oversized-answer.test.ts
 * holds ws to it. Where they are not there, the id is unknown and the caller treats the close as any
 * other.
 */
import { Buffer } from 'node:buffer';
import type WebSocket from 'ws';

interface ReceiverState {
  _fragments?: unknown;
  _buffers?: unknown;
}

/** Enough to hold `{"jsonrpc":"2.0","id":<integer>` in any key order. */
const HEAD_BYTES = 96;

/** The id leads the message, before any nested object or array (which a result or error opens). */
const LEADING_ID = /^\s*\{[^{[]*?"id"\s*:\s*(\d{1,15})\s*[,}]/;

/** The numeric id at the start of the message ws refused on `socket`, if its bytes are still held. */
export function oversizedMessageId(socket: WebSocket): number | undefined {
  const receiver = (socket as unknown as { _receiver?: ReceiverState })._receiver;
  const start = firstBytes(receiver?._fragments) ?? firstBytes(receiver?._buffers);
  if (start === undefined) return undefined;
  const match = LEADING_ID.exec(start.toString('latin1'));
  return match === null ? undefined : Number(match[1]);
}

/** Up to HEAD_BYTES from the front of a list of buffers; undefined when it is not one or is empty. */
function firstBytes(list: unknown): Buffer | undefined {
  if (!Array.isArray(list) || list.length === 0) return undefined;
  const parts: Buffer[] = [];
  let length = 0;
  for (const part of list) {
    if (!Buffer.isBuffer(part)) return undefined;
    parts.push(part.subarray(0, HEAD_BYTES - length));
    length += parts.at(-1)!.length;
    if (length >= HEAD_BYTES) break;
  }
  return length === 0 ? undefined : Buffer.concat(parts, length);
}
