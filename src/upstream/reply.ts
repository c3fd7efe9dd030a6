/**
 * Upstream responses kept as bytes. A node answers `{"jsonrpc":"2.0","id":7,"result":...}`; evmux
 * keeps everything after the id (the "tail") and later writes the client's id in front of it, so
 * results are never parsed or re-serialized on the way through.
 */
import type { JsonRpcErrorObject } from '../jsonrpc/errors.js';

export interface UpstreamReply {
  /** `"result":...}` or `"error":...}`: the response after its id, ready to be prefixed. */
  readonly tail: string;
  /** Set when the node answered with a JSON-RPC error. */
  readonly error?: JsonRpcErrorObject;
}

export interface ParsedFrame {
  /** The numeric id evmux gave the request, when the frame is a response. */
  id?: number;
  reply?: UpstreamReply;
  /** Parsed object, when the frame is not a plain response (notifications) or had an odd layout. */
  message?: Record<string, unknown>;
}

const FAST_PREFIX = /^\{"jsonrpc":"2\.0","id":(\d+),/;

/** Classify one upstream text frame. Throws SyntaxError on garbage. */
export function parseUpstreamFrame(text: string): ParsedFrame {
  const fast = FAST_PREFIX.exec(text);
  if (fast) {
    const tail = text.slice(fast[0].length);
    const id = Number(fast[1]);
    if (tail.startsWith('"result":')) return { id, reply: { tail } };
    if (tail.startsWith('"error":')) {
      const parsed = JSON.parse(text) as { error: JsonRpcErrorObject };
      return { id, reply: { tail, error: normalizeError(parsed.error) } };
    }
  }
  const message = JSON.parse(text) as unknown;
  if (message === null || typeof message !== 'object' || Array.isArray(message)) {
    throw new SyntaxError('upstream frame is not a JSON-RPC object');
  }
  const object = message as Record<string, unknown>;
  if (typeof object.id === 'number' && ('result' in object || 'error' in object)) {
    return { id: object.id, reply: replyFromObject(object) };
  }
  return { message: object };
}

export function replyFromObject(object: Record<string, unknown>): UpstreamReply {
  if ('error' in object && object.error !== undefined && object.error !== null) {
    const error = normalizeError(object.error);
    return { tail: `"error":${JSON.stringify(error)}}`, error };
  }
  return { tail: `"result":${JSON.stringify(object.result ?? null)}}` };
}

export function resultReply(result: unknown): UpstreamReply {
  return { tail: `"result":${JSON.stringify(result)}}` };
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

/** Parse the result part of a successful reply (for the few calls evmux must look into). */
export function replyResult(reply: UpstreamReply): unknown {
  return (JSON.parse(`{${reply.tail}`) as { result: unknown }).result;
}
