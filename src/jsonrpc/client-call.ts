/**
 * One request of a client frame on its way through evmux, and the batch it may belong to. A call
 * is the sink its plain call's outcome is handed to (see ReplySink), so a request allocates one
 * object here instead of async frames and promises; it turns the outcome into the answer's bytes.
 */
import { Buffer } from 'node:buffer';
import type { Telemetry } from '../telemetry.js';
import type { HeldCalls } from './held-calls.js';
import type { ReplySink, UpstreamReply } from '../upstream/reply.js';
import { LimitExceededError, toErrorObject, type JsonRpcErrorObject } from './errors.js';
import { digitCount, ID_PREFIX, isDigitsId, putBytes, putDigits } from './json-bytes.js';
import { idJson, type ReplyId } from './request-id.js';

/** Where a frame's answer goes: the WebSocket session or the HTTP exchange. */
export interface FrameAnswerTarget {
  /** calls of this connection currently in flight; the dispatcher maintains it */
  inFlight: number;
  /** calls of its batches waiting for a slot, made when the first one has to wait */
  held: HeldCalls | undefined;
  /** the client has left (socket closed, HTTP request aborted): answers to it are dropped */
  readonly closed: boolean;
  /**
   * The whole frame's answer, or undefined when every request was a notification. `after` runs
   * once the answer is queued (subscriptions start streaming).
   */
  answer(response: Buffer | undefined, after: ReadonlyArray<() => void>): void;
}

export const NO_AFTER: ReadonlyArray<() => void> = Object.freeze([]);

const OPEN_BRACKET = Buffer.from('[');
const CLOSE_BRACKET = Buffer.from(']');
const COMMA = Buffer.from(',');

/** A JSON-RPC error response, counted by code. */
export function errorResponse(id: ReplyId, error: JsonRpcErrorObject, telemetry: Telemetry): Buffer {
  telemetry.clientError(error.code);
  return Buffer.from(`{"jsonrpc":"2.0","id":${idJson(id)},"error":${JSON.stringify(error)}}`);
}

const COMMA_BYTE = 0x2c;
const SPACE_BYTE = 0x20;

/**
 * The node's bytes after its id, behind the caller's id: the result is never re-serialized. When the
 * caller's id is a number no longer than the node's, it is written over the node's id in the received
 * frame itself, right-aligned after spaces (`"id":   7,`, whitespace JSON allows), and the frame is
 * the answer: no buffer to allocate and no result to copy (callgrind: ~1k instructions per call).
 */
function withCallerId(id: ReplyId, reply: UpstreamReply): Buffer {
  const { frame, tailStart } = reply;
  const digits = isDigitsId(id) ? digitCount(id) : 0;
  if (frame !== undefined && tailStart !== undefined && digits > 0) {
    const comma = tailStart - 1;
    const slot = comma - ID_PREFIX.length;
    if (digits <= slot) {
      for (let at = ID_PREFIX.length; at < comma - digits; at++) frame[at] = SPACE_BYTE;
      putDigits(frame, comma - digits, id as number, digits);
      return frame;
    }
  }
  const tail = reply.tail;
  const idBytes = digits > 0 ? undefined : Buffer.from(idJson(id));
  const response = Buffer.allocUnsafe(ID_PREFIX.length + (idBytes?.length ?? digits) + 1 + tail.length);
  let at = putBytes(response, 0, ID_PREFIX);
  at = idBytes === undefined ? putDigits(response, at, id as number, digits) : putBytes(response, at, idBytes);
  response[at++] = COMMA_BYTE;
  putBytes(response, at, tail);
  return response;
}

/** The answers of one batch, kept in request order; the frame is answered when the last is in. */
export class BatchAnswer {
  readonly #target: FrameAnswerTarget;
  readonly #parts: Array<Buffer | undefined>;
  readonly #maxBytes: number;
  #bytes = 0;
  #waiting: number;
  #after: Array<() => void> | undefined;

  /**
   * `maxBytes`: the most the answers may hold together. The batch is answered as one message, held
   * whole until its last call settles, so it is held to the limit of one node answer
   * (limits.maxAnswerBytes): a hundred calls each under that limit would otherwise be a hundred
   * times it in memory at once.
   */
  constructor(target: FrameAnswerTarget, size: number, maxBytes: number) {
    this.#target = target;
    this.#parts = new Array<Buffer | undefined>(size).fill(undefined);
    this.#waiting = size;
    this.#maxBytes = maxBytes;
  }

  /** Whether an answer of `bytes` still fits beside the answers settled so far. */
  admits(bytes: number): boolean {
    return this.#bytes + bytes <= this.#maxBytes;
  }

  /** The error that takes the place of an answer that does not fit. */
  get overLimit(): JsonRpcErrorObject {
    return new LimitExceededError(
      `this batch's answer would pass this gateway's limit of ${this.#maxBytes} bytes (limits.maxAnswerBytes); ask in smaller batches`,
    ).toObject();
  }

  settle(index: number, response: Buffer | undefined, after: (() => void) | undefined): void {
    this.#parts[index] = response;
    if (response !== undefined) this.#bytes += response.length;
    if (after !== undefined) (this.#after ??= []).push(after);
    if (--this.#waiting > 0) return;
    const parts: Buffer[] = [];
    for (const part of this.#parts) {
      if (part === undefined) continue;
      parts.push(parts.length === 0 ? OPEN_BRACKET : COMMA, part);
    }
    if (parts.length > 0) parts.push(CLOSE_BRACKET);
    this.#target.answer(parts.length === 0 ? undefined : Buffer.concat(parts), this.#after ?? NO_AFTER);
  }
}

/**
 * One request's answer to where it goes: its batch, or the frame's target when it came alone. Both
 * requests the dispatcher refuses and calls that settle go through here.
 */
export function answerRequest(
  target: FrameAnswerTarget,
  batch: BatchAnswer | undefined,
  index: number,
  response: Buffer | undefined,
  after?: () => void,
): void {
  if (batch !== undefined) batch.settle(index, response, after);
  else target.answer(response, after === undefined ? NO_AFTER : [after]);
}

export class ClientCall implements ReplySink {
  /** set by eth_subscribe: starts the stream once the answer is queued */
  after: (() => void) | undefined = undefined;
  readonly #target: FrameAnswerTarget;
  readonly #id: ReplyId;
  /** false for a notification: it gets no answer */
  readonly #answered: boolean;
  readonly #batch: BatchAnswer | undefined;
  readonly #index: number;
  readonly #telemetry: Telemetry;
  #settled = false;

  constructor(target: FrameAnswerTarget, id: ReplyId, answered: boolean, batch: BatchAnswer | undefined, index: number, telemetry: Telemetry) {
    this.#target = target;
    this.#id = id;
    this.#answered = answered;
    this.#batch = batch;
    this.#index = index;
    this.#telemetry = telemetry;
    target.inFlight++;
  }

  resolve(reply: UpstreamReply): void {
    if (!this.#settle()) return;
    const response = this.#answered ? withCallerId(this.#id, reply) : undefined;
    const batch = this.#batch;
    // A subscription's answer (its id, a few dozen bytes) always fits: in its place an error would
    // leave the subscription made, streaming under an id its client never got.
    if (response === undefined || batch === undefined || this.after !== undefined || batch.admits(response.length)) this.#deliver(response);
    else this.#deliver(errorResponse(this.#id, batch.overLimit, this.#telemetry));
  }

  reject(error: unknown): void {
    if (!this.#settle()) return;
    // A client that left is not answered, so the error is not counted as one returned to a client.
    this.#deliver(this.#answered && !this.#target.closed ? errorResponse(this.#id, toErrorObject(error), this.#telemetry) : undefined);
  }

  /** Only the first outcome counts (a second one would be a bug upstream of here). */
  #settle(): boolean {
    if (this.#settled) return false;
    this.#settled = true;
    this.#target.inFlight--;
    this.#target.held?.release();
    return true;
  }

  #deliver(response: Buffer | undefined): void {
    answerRequest(this.#target, this.#batch, this.#index, response, this.after);
  }
}
