/**
 * Turns the text of one client frame (WebSocket) or body (HTTP) into the response text: parsing,
 * validation, batches, method policy, per-connection in-flight limit, subscriptions and plain
 * calls. Responses are built by prefixing the node's reply bytes with the caller's id.
 */
import type { MethodVerdict } from '../router/method-policy.js';
import type { CallContext, CallRouter } from '../router/call-router.js';
import type { Telemetry } from '../telemetry.js';
import { resultReply, type UpstreamReply } from '../upstream/reply.js';
import {
  InvalidParamsError,
  InvalidRequestError,
  LimitExceededError,
  MethodNotFoundError,
  ParseError,
  toErrorObject,
  type JsonRpcErrorObject,
} from './errors.js';
import type { JsonRpcId } from './types.js';

/** What a WebSocket session offers for eth_subscribe; absent over HTTP. */
export interface SubscriptionHost {
  /** Validates and registers; the returned `start` runs after the response is sent. */
  subscribe(params: unknown): Promise<{ id: string; start: () => void }>;
  unsubscribe(params: unknown): boolean;
}

export interface DispatchContext extends CallContext {
  transport: 'ws' | 'http';
  /** calls of this connection currently in flight; the dispatcher maintains it */
  inFlight: number;
  subscriptions?: SubscriptionHost;
}

export interface DispatchResult {
  /** undefined when every request was a notification */
  response?: Buffer;
  /** run after the response is on the wire (subscriptions start streaming) */
  after: Array<() => void>;
}

export interface DispatcherLimits {
  maxBatchSize: number;
  maxInFlightPerConnection: number;
}

const OPEN_BRACKET = Buffer.from('[');
const CLOSE_BRACKET = Buffer.from(']');
const COMMA = Buffer.from(',');

export class Dispatcher {
  readonly #policy: (method: string) => MethodVerdict;
  readonly #router: CallRouter;
  readonly #limits: DispatcherLimits;
  readonly #telemetry: Telemetry;

  constructor(policy: (method: string) => MethodVerdict, router: CallRouter, limits: DispatcherLimits, telemetry: Telemetry) {
    this.#policy = policy;
    this.#router = router;
    this.#limits = limits;
    this.#telemetry = telemetry;
  }

  async dispatch(text: string, context: DispatchContext): Promise<DispatchResult> {
    const after: Array<() => void> = [];
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch (error) {
      return { response: this.#error(null, new ParseError(`parse error: ${(error as Error).message}`).toObject()), after };
    }
    if (!Array.isArray(message)) {
      const response = await this.#one(message, context, after);
      return response === undefined ? { after } : { response, after };
    }
    if (message.length === 0) {
      return { response: this.#error(null, new InvalidRequestError('invalid request: empty batch').toObject()), after };
    }
    if (message.length > this.#limits.maxBatchSize) {
      const error = new InvalidRequestError(`invalid request: batch of ${message.length} exceeds the limit of ${this.#limits.maxBatchSize}`);
      return { response: this.#error(null, error.toObject()), after };
    }
    const responses = await Promise.all(message.map((item) => this.#one(item, context, after)));
    const parts: Buffer[] = [];
    for (const response of responses) {
      if (response === undefined) continue;
      parts.push(parts.length === 0 ? OPEN_BRACKET : COMMA, response);
    }
    if (parts.length === 0) return { after };
    parts.push(CLOSE_BRACKET);
    return { response: Buffer.concat(parts), after };
  }

  async #one(request: unknown, context: DispatchContext, after: Array<() => void>): Promise<Buffer | undefined> {
    if (request === null || typeof request !== 'object' || Array.isArray(request)) {
      return this.#error(null, new InvalidRequestError('invalid request: expected a JSON-RPC 2.0 request object').toObject());
    }
    const { jsonrpc, id, method, params } = request as Record<string, unknown>;
    const hasId = 'id' in request;
    if (hasId && id !== null && typeof id !== 'string' && typeof id !== 'number') {
      return this.#error(null, new InvalidRequestError('invalid request: "id" must be a string, number or null').toObject());
    }
    const replyId = (hasId ? id : null) as JsonRpcId;
    const problem =
      jsonrpc !== '2.0'
        ? 'invalid request: "jsonrpc" must be "2.0"'
        : typeof method !== 'string' || method.length === 0
          ? 'invalid request: "method" must be a non-empty string'
          : method.length > 128
            ? 'invalid request: "method" is longer than 128 characters'
            : params !== undefined && (params === null || typeof params !== 'object')
              ? 'invalid request: "params" must be an array or an object'
              : undefined;
    if (problem !== undefined) return this.#error(replyId, new InvalidRequestError(problem).toObject());
    const name = method as string;

    if (context.inFlight >= this.#limits.maxInFlightPerConnection) {
      const error = new LimitExceededError(`too many requests in flight on this connection (limit ${this.#limits.maxInFlightPerConnection})`);
      return hasId ? this.#error(replyId, error.toObject()) : undefined;
    }
    context.inFlight++;
    try {
      const reply = await this.#execute(name, params, context, after);
      if (!hasId) return undefined;
      // The node's bytes after its id, behind the caller's id: the result is never re-serialized.
      return Buffer.concat([Buffer.from(`{"jsonrpc":"2.0","id":${JSON.stringify(replyId)},`), reply.tail]);
    } catch (error) {
      return hasId ? this.#error(replyId, toErrorObject(error)) : undefined;
    } finally {
      context.inFlight--;
    }
  }

  /** Not async: a plain call hands back the router's promise without another hop; errors thrown here reach #one's catch. */
  #execute(method: string, params: unknown, context: DispatchContext, after: Array<() => void>): Promise<UpstreamReply> | UpstreamReply {
    if (method === 'eth_subscribe' || method === 'eth_unsubscribe') {
      const host = context.subscriptions;
      if (host === undefined) throw new MethodNotFoundError(`${method} is only available over WebSocket`);
      if (method === 'eth_unsubscribe') return resultReply(host.unsubscribe(params));
      return this.#subscribe(host, params, after);
    }
    const verdict = this.#policy(method);
    if (verdict === 'denied') throw new MethodNotFoundError(`method ${method} is not allowed on this gateway`);
    if (verdict === 'unknown') throw new MethodNotFoundError(`method ${method} does not exist or is not available`);
    if (params !== undefined && !Array.isArray(params)) {
      throw new InvalidParamsError(`${method}: params must be an array`);
    }
    return this.#router.call(method, params ?? [], context);
  }

  async #subscribe(host: SubscriptionHost, params: unknown, after: Array<() => void>): Promise<UpstreamReply> {
    const { id, start } = await host.subscribe(params);
    after.push(start);
    return resultReply(id);
  }

  #error(id: JsonRpcId, error: JsonRpcErrorObject): Buffer {
    this.#telemetry.clientError(error.code);
    return Buffer.from(JSON.stringify({ jsonrpc: '2.0', id, error }));
  }
}
