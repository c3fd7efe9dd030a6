/**
 * Upstream responses kept as bytes. A node answers `{"jsonrpc":"2.0","id":7,"result":...}`; evmux
 * keeps everything after the id (the "tail") as a view into the received buffer and later writes
 * the client's id in front of it, so results are never decoded, parsed or re-serialized on the way
 * through.
 */
import { Buffer } from 'node:buffer';
import type { JsonRpcErrorObject } from '../jsonrpc/errors.js';
import { ID_PREFIX } from '../jsonrpc/json-bytes.js';

export interface UpstreamReply {
  /** `"result":...}` or `"error":...}`: the response after its id, ready to be prefixed. */
  readonly tail: Buffer;
  /**
   * The node's whole response, when it is `ID_PREFIX`, the id's digits, a comma and `tail` (from
   * `tailStart` on): the one caller this reply goes to may write its own id over those digits (see
   * client-call.ts).
   */
  readonly frame?: Buffer;
  readonly tailStart?: number;
  /** Set when the node answered with a JSON-RPC error. */
  readonly error?: JsonRpcErrorObject | undefined;
}

/**
 * Where one call's outcome goes. The hot path hands one such object down through the router, the
 * node and its socket instead of chaining a promise with two closures at every layer: at thousands
 * of calls a second those allocations set how often the young generation is collected, and every
 * collection stalls the calls in flight. Implementations must not throw.
 */
export interface ReplySink {
  resolve(reply: UpstreamReply): void;
  reject(error: unknown): void;
  /** whose call it is (the session key), for a busy node's fair queue; absent for evmux's own */
  readonly client?: string;
  /** which client's call it is (CallContext.clientId); absent for evmux's own */
  readonly clientId?: string | undefined;
}

/** Feed a promise's outcome into a sink (the less travelled paths stay promise-based). */
export function settle(promise: Promise<UpstreamReply>, sink: ReplySink): void {
  promise.then(
    (reply) => sink.resolve(reply),
    (error: unknown) => sink.reject(error),
  );
}

/** What takes calls with a sink: a node (its cap and breaker) or one of its sockets. */
export interface CallSender {
  send(method: string, params: unknown, timeoutMs: number, sink: ReplySink): void;
}

/** Whose call it is: a client's session key, read only when a busy node queues the call. */
export interface Caller {
  readonly sessionKey: string;
  readonly clientId: string;
}

/** A call through `sender` as a promise, for the less travelled paths. */
export function requestVia(sender: CallSender, method: string, params: unknown, timeoutMs: number, caller?: Caller): Promise<UpstreamReply> {
  return new Promise<UpstreamReply>((resolve, reject) =>
    sender.send(method, params, timeoutMs, caller === undefined ? { resolve, reject } : { resolve, reject, get client() { return caller.sessionKey; }, get clientId() { return caller.clientId; } }),
  );
}

/** Fail a call that never left, after the caller's own code has run, as a rejected promise would. */
export function rejectLater(sink: ReplySink, error: unknown): void {
  queueMicrotask(() => sink.reject(error));
}

/** Answer a call without a node, after the caller's own code has run, as a resolved promise would. */
export function resolveLater(sink: ReplySink, reply: UpstreamReply): void {
  queueMicrotask(() => sink.resolve(reply));
}

export interface ParsedFrame {
  /** The numeric id evmux gave the request, when the frame is a response. */
  id?: number;
  reply?: UpstreamReply;
  /** Parsed object, when the frame is not a plain response (notifications) or had an odd layout. */
  message?: Record<string, unknown>;
}

const NULL_TAIL = Buffer.from('"result":null}');
const COMMA = 0x2c;
const ZERO = 0x30;
const NINE = 0x39;
const CLOSE_BRACE = 0x7d;

/**
 * Whether the frame ends as a JSON object does, after any whitespace: the fast path's one look at
 * what follows the result, whose bytes go to the client unread. A node (or a proxy before it) that
 * cut an answer short or wrote a page after it would otherwise send the client bytes it cannot
 * parse, and a batch with one such answer is unreadable whole; caught, the frame takes the slow
 * path, which refuses it.
 */
function endsAsObject(frame: Buffer): boolean {
  let at = frame.length - 1;
  while (at > 0 && (frame[at] === 0x20 || frame[at] === 0x0a || frame[at] === 0x0d || frame[at] === 0x09)) at--;
  return frame[at] === CLOSE_BRACE;
}

/** Tokens as plain arrays of small integers: cheaper to read than a Buffer's elements. */
const ERROR_BYTES: readonly number[] = [...Buffer.from('"error":')];
const NULL_TAIL_BYTES: readonly number[] = [...NULL_TAIL];

/** Byte by byte in JS: these tokens are short, and `Buffer#compare` crosses into C++ and validates four offsets. */
function startsWithAt(frame: Buffer, offset: number, token: readonly number[]): boolean {
  const length = token.length;
  if (frame.length < offset + length) return false;
  for (let i = 0; i < length; i++) if (frame[offset + i] !== token[i]) return false;
  return true;
}

/**
 * Whether the frame starts with `ID_PREFIX`, compared byte by byte without a loop. In a loop over a
 * token (`startsWithAt`) TurboFan loads and bounds-checks both arrays on every turn, ~30
 * instructions a byte (callgrind), and every reply starts with these 22; written out, a byte is a
 * load and a compare against a constant.
 */
function startsWithIdPrefix(f: Buffer): boolean {
  // {"jsonrpc":"2.0","id":
  return (
    f.length >= 22 &&
    f[0] === 0x7b && f[1] === 0x22 && f[2] === 0x6a && f[3] === 0x73 && f[4] === 0x6f && f[5] === 0x6e &&
    f[6] === 0x72 && f[7] === 0x70 && f[8] === 0x63 && f[9] === 0x22 && f[10] === 0x3a && f[11] === 0x22 &&
    f[12] === 0x32 && f[13] === 0x2e && f[14] === 0x30 && f[15] === 0x22 && f[16] === 0x2c && f[17] === 0x22 &&
    f[18] === 0x69 && f[19] === 0x64 && f[20] === 0x22 && f[21] === 0x3a
  );
}

/** Whether `"result":` starts at `at`, written out for the same reason. */
function resultKeyAt(f: Buffer, at: number): boolean {
  // "result":
  return (
    f.length >= at + 9 &&
    f[at] === 0x22 && f[at + 1] === 0x72 && f[at + 2] === 0x65 && f[at + 3] === 0x73 && f[at + 4] === 0x75 &&
    f[at + 5] === 0x6c && f[at + 6] === 0x74 && f[at + 7] === 0x22 && f[at + 8] === 0x3a
  );
}

/** Classify one upstream text frame. Throws SyntaxError on garbage. */
export function parseUpstreamFrame(frame: Buffer): ParsedFrame {
  // Fast path: the layout every common node uses, read straight off the bytes.
  if (startsWithIdPrefix(frame)) {
    const idStart = ID_PREFIX.length;
    const end = Math.min(frame.length, idStart + 15);
    let offset = idStart;
    let id = 0;
    for (; offset < end; offset++) {
      const byte = frame[offset]!;
      if (byte < ZERO || byte > NINE) break;
      id = id * 10 + (byte - ZERO);
    }
    if (offset > idStart && frame[offset] === COMMA) {
      if (resultKeyAt(frame, offset + 1) && endsAsObject(frame)) return { id, reply: new NodeReply(frame, offset + 1, undefined) };
      if (startsWithAt(frame, offset + 1, ERROR_BYTES)) {
        const parsed = JSON.parse(frame.toString('utf8')) as Record<string, unknown>;
        // `"error":null` ahead of the result (a Go struct without omitempty writes both): no error.
        if (parsed.error === null) return { id, reply: replyFromObject(parsed) };
        return { id, reply: new NodeReply(frame, offset + 1, normalizeError(parsed.error)) };
      }
    }
  }
  const message = JSON.parse(frame.toString('utf8')) as unknown;
  if (message === null || typeof message !== 'object' || Array.isArray(message)) {
    throw new SyntaxError('upstream frame is not a JSON-RPC object');
  }
  const object = message as Record<string, unknown>;
  if (typeof object.id === 'number' && ('result' in object || 'error' in object)) {
    return { id: object.id, reply: replyFromObject(object) };
  }
  return { message: object };
}

/**
 * A reply in the node's usual layout. Its tail is cut from the frame only when asked for: most
 * answers are the frame itself with the caller's id written in (client-call.ts), and a view costs a
 * typed array's allocation (callgrind: ~500 instructions).
 */
class NodeReply implements UpstreamReply {
  constructor(
    readonly frame: Buffer,
    readonly tailStart: number,
    readonly error: JsonRpcErrorObject | undefined,
  ) {}

  get tail(): Buffer {
    return this.frame.subarray(this.tailStart);
  }
}

export function replyFromObject(object: Record<string, unknown>): UpstreamReply {
  if ('error' in object && object.error !== undefined && object.error !== null) {
    const error = normalizeError(object.error);
    return { tail: Buffer.from(`"error":${JSON.stringify(error)}}`), error };
  }
  return resultReply(object.result ?? null);
}

/** A successful reply evmux makes itself. */
export function resultReply(result: unknown): UpstreamReply {
  return { tail: Buffer.from(`"result":${JSON.stringify(result)}}`) };
}

/** `result: null` — worth a second opinion for lookups a lagging node may not know yet. */
export function isNullResult(reply: UpstreamReply): boolean {
  return reply.error === undefined && reply.tail.length === NULL_TAIL.length && startsWithAt(reply.tail, 0, NULL_TAIL_BYTES);
}

function normalizeError(value: unknown): JsonRpcErrorObject {
  if (value !== null && typeof value === 'object') {
    const { code, message, data } = value as Record<string, unknown>;
    const error: JsonRpcErrorObject = {
      code: typeof code === 'number' ? code : -32603,
      message: typeof message === 'string' ? message : 'upstream error',
    };
    if (data !== undefined) error.data = data;
    return error;
  }
  return { code: -32603, message: String(value) };
}

/** `"number":"0x` from its `u` on: the field is found by its `u`, whose search is a memchr. */
const NUMBER_REST = [...Buffer.from('umber":"0x')];
const U = 0x75;
const N = 0x6e;
const QUOTE = 0x22;

/**
 * The `number` of a block a node answered with, read from its bytes: the first such field, a
 * header's (a block's transactions and receipts name theirs `blockNumber`). Undefined for null, an
 * error, a layout without it, or a number past 2^52. Found by each `u` in turn (hex has none, and
 * of the header's other field names only `difficulty` has one): Buffer#indexOf of the whole field
 * took 2 µs on a block's quote-laden JSON.
 */
export function answeredBlockNumber(reply: UpstreamReply): number | undefined {
  if (reply.error !== undefined) return undefined;
  const { tail } = reply;
  for (let at = tail.indexOf(U); at > 1; at = tail.indexOf(U, at + 1)) {
    if (tail[at - 1] !== N || tail[at - 2] !== QUOTE || !startsWithAt(tail, at, NUMBER_REST)) continue;
    return hexNumberAt(tail, at + NUMBER_REST.length);
  }
  return undefined;
}

const BLOCK_NUMBER_FIELD = Buffer.from('"blockNumber":"0x');

/**
 * The last `blockNumber` in a node's answer: an eth_getLogs list's highest block (logs come in
 * block order), a receipt's block. Undefined for none, an error, or a number past 2^52. Searched
 * from the end, so a long list costs no more than its last entry.
 */
export function lastBlockNumber(reply: UpstreamReply): number | undefined {
  if (reply.error !== undefined) return undefined;
  const at = reply.tail.lastIndexOf(BLOCK_NUMBER_FIELD);
  return at < 0 ? undefined : hexNumberAt(reply.tail, at + BLOCK_NUMBER_FIELD.length);
}

/** The hex digits from `start` up to a quote, as a number; undefined for none, a non-digit, or past 2^52. */
function hexNumberAt(tail: Buffer, start: number): number | undefined {
  let value = 0;
  let digits = 0;
  for (let i = start; i < tail.length && tail[i] !== QUOTE; i++, digits++) {
    const digit = hexDigit(tail[i]!);
    if (digit < 0 || digits === 13) return undefined;
    value = value * 16 + digit;
  }
  return digits === 0 ? undefined : value;
}

function hexDigit(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  const lower = byte | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
}

/** Parse the result part of a successful reply (for the few calls evmux must look into). */
export function replyResult(reply: UpstreamReply): unknown {
  return (JSON.parse(`{${reply.tail.toString('utf8')}`) as { result: unknown }).result;
}
