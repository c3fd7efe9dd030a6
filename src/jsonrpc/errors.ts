/**
 * JSON-RPC error classes, one per code. Every error evmux returns to a client is one of these;
 * `toErrorObject` is the one place that turns anything thrown into a JSON-RPC error object.
 */

export interface JsonRpcErrorObject {
  code: number;
  message: string;
  data?: unknown;
}

export class RpcError extends Error {
  static code = -32603;
  readonly code: number;
  readonly data: unknown;

  constructor(message: string, options: { code?: number; data?: unknown; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code ?? (new.target as typeof RpcError).code;
    this.data = options.data;
  }

  toObject(): JsonRpcErrorObject {
    return this.data === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, data: this.data };
  }
}

export class ParseError extends RpcError {
  static override code = -32700;
}

export class InvalidRequestError extends RpcError {
  static override code = -32600;
}

export class MethodNotFoundError extends RpcError {
  static override code = -32601;
}

export class InvalidParamsError extends RpcError {
  static override code = -32602;
}

export class InternalError extends RpcError {
  static override code = -32603;
}

/** Every upstream that could serve the call failed, timed out or is unavailable. */
export class UpstreamUnavailableError extends RpcError {
  static override code = -32050;
}

/** A per-connection or per-IP limit was hit (in-flight requests, subscriptions, queue full). */
export class LimitExceededError extends RpcError {
  static override code = -32005;
}

/** An error returned by an upstream node, forwarded to the client as it was. */
export class UpstreamRpcError extends RpcError {
  static override code = -32000;
}

/**
 * A filter id no node holds: answered as geth and anvil answer one (-32000 "filter not found"), so
 * a client makes its filter again (viem's watchers do on -32000).
 */
export class FilterNotFoundError extends RpcError {
  static override code = -32000;

  constructor() {
    super('filter not found');
  }
}

export function toErrorObject(error: unknown): JsonRpcErrorObject {
  if (error instanceof RpcError) return error.toObject();
  // JSON.stringify and the checks of a filter recurse: params nested some 10,000 deep, which a 5 MB
  // request can hold, overflow the stack on the way.
  if (error instanceof RangeError && error.message.startsWith('Maximum call stack size exceeded')) {
    return { code: InvalidParamsError.code, message: 'invalid params: nested too deeply' };
  }
  return { code: InternalError.code, message: 'internal error' };
}
