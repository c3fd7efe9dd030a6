/**
 * Turns the text of one client frame (WebSocket) or body (HTTP) into its answer: parsing,
 * validation, batches, method policy, per-connection in-flight limit, subscriptions and plain
 * calls. Responses are built by prefixing the node's reply bytes with the caller's id (client-call.ts).
 * The common request layout skips the general parse (common-request.ts).
 */
import { Buffer } from 'node:buffer';
import type { MethodVerdict } from '../router/method-policy.js';
import type { CallContext, CallRouter } from '../router/call-router.js';
import { isFilterUser } from '../router/retry-policy.js';
import { checkFilterSize, type FilterLimits } from '../subs/subscription-params.js';
import type { Telemetry } from '../telemetry.js';
import { resultReply } from '../upstream/reply.js';
import { answerRequest, BatchAnswer, ClientCall, errorResponse, NO_AFTER, type FrameAnswerTarget } from './client-call.js';
import {
  InvalidParamsError,
  InvalidRequestError,
  LimitExceededError,
  MethodNotFoundError,
  ParseError,
  UpstreamUnavailableError,
  type JsonRpcErrorObject,
  type RpcError,
} from './errors.js';
import type { ClientRateLimit } from './client-rate-limit.js';
import { commonRequest } from './common-request.js';
import { MAX_PARAMS_DEPTH, unforwardableParams } from './forwardable-params.js';
import { HeldCalls } from './held-calls.js';
import { canonicalMethod } from './method-names.js';
import { BODY_LIMITS, SHAPE_SCAN_FROM, shapeExcess, type ShapeLimits } from './body-shape.js';
import { batchTexts, paramsText } from './params-text.js';
import { answerId, type ReplyId } from './request-id.js';
import { MAX_METHOD_LENGTH, type JsonRpcId } from './types.js';

/** What a WebSocket session offers for eth_subscribe; absent over HTTP. */
export interface SubscriptionHost {
  /** Validates and registers; the returned `start` runs after the response is sent. */
  subscribe(params: unknown): Promise<{ id: string; start: () => void }>;
  /** Whether this connection held the subscription `id` (it no longer does). */
  unsubscribe(id: string): boolean;
}

export interface DispatchContext extends CallContext, FrameAnswerTarget {
  transport: 'ws' | 'http';
  subscriptions?: SubscriptionHost;
}

export interface DispatcherLimits {
  maxBatchSize: number;
  maxInFlightPerConnection: number;
  maxFilterAddresses: number;
  maxFilterTopicsPerPosition: number;
  /** a batch's answer as a whole is held to it (BatchAnswer) */
  maxAnswerBytes: number;
}

/**
 * Calls on what this evmux alone holds, still served while it shuts down: eth_unsubscribe and the
 * calls on a filter. Another evmux could not take them (it has neither the subscription nor the
 * filter), and a filter's last poll hands over what its client has not seen yet.
 */
function servedWhileShuttingDown(method: string): boolean {
  return method === 'eth_unsubscribe' || isFilterUser(method);
}

const SHUTTING_DOWN = (): UpstreamUnavailableError =>
  new UpstreamUnavailableError('evmux is shutting down: this call was not sent to any node; send it again (to another evmux)');

/** A body refused unread (body-shape.ts), for the limit it passed: it has no id to answer under. */
const TOO_COSTLY: Record<keyof ShapeLimits, () => RpcError> = {
  depth: () => new InvalidParamsError(`the request nests deeper than ${BODY_LIMITS.depth} levels (a batch, a request object, params ${MAX_PARAMS_DEPTH} deep: the most evmux forwards); it was not read`),
  containers: () => new InvalidRequestError(`the request holds more than ${BODY_LIMITS.containers} arrays and objects, more than any request evmux forwards; it was not read`),
  separators: () => new InvalidRequestError(`the request holds more than ${BODY_LIMITS.separators} values, more than any request evmux forwards; it was not read`),
};

/** A held call's client left (#heldRefusal): settled without an answer. */
const GONE = new UpstreamUnavailableError('the client left');

const OPEN_BRACKET = Buffer.from('[');
const CLOSE_BRACKET = Buffer.from(']');

/**
 * The id of a batch's first call (a request object with a string or number id), else null; `text`
 * is the batch's JSON, for an id past 2^53 (request-id.ts).
 */
function firstCallId(batch: unknown[], text: string): ReplyId {
  for (const [index, item] of batch.entries()) {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) continue;
    const id = (item as Record<string, unknown>)['id'];
    if (typeof id === 'string' || typeof id === 'number') return answerId(id, requestTexts(text, batch.length)?.[index]);
  }
  return null;
}

/** The JSON of each request of a batch that parsed to `count` of them, when the scan finds them all (params-text.ts). */
function requestTexts(text: string, count: number): string[] | undefined {
  const texts = batchTexts(text);
  return texts?.length === count ? texts : undefined;
}

export class Dispatcher {
  readonly #policy: (method: string) => MethodVerdict;
  readonly #router: CallRouter;
  readonly #limits: DispatcherLimits;
  readonly #telemetry: Telemetry;
  readonly #rateLimit: ClientRateLimit | undefined;
  readonly #filterLimits: FilterLimits;
  /** evmux is shutting down: no call is started any more (refuseNewCalls) */
  #refusing = false;

  constructor(policy: (method: string) => MethodVerdict, router: CallRouter, limits: DispatcherLimits, telemetry: Telemetry, rateLimit?: ClientRateLimit) {
    this.#policy = policy;
    this.#router = router;
    this.#limits = limits;
    this.#telemetry = telemetry;
    this.#rateLimit = rateLimit;
    this.#filterLimits = { maxAddresses: limits.maxFilterAddresses, maxTopicsPerPosition: limits.maxFilterTopicsPerPosition };
  }

  /**
   * From now on every request (but those servedWhileShuttingDown) is answered at once with an
   * error saying evmux is shutting down and the call went to no node, so a client can send it again
   * elsewhere without doubt (a transaction included): a drain that kept starting calls never
   * finished under steady traffic, and the calls cut at its end were left unanswered.
   */
  refuseNewCalls(): void {
    this.#refusing = true;
  }

  /**
   * Handle one frame; its answer goes to `context.answer`, at once for errors, else when the calls
   * settle. `ascii`: every character of `text` is ASCII (FrontEndHandlers.message).
   */
  dispatch(text: string, context: DispatchContext, ascii = false): void {
    // Before any parse: deep nesting, or a mass of small values, makes JSON.parse slow enough to
    // hold up every client.
    const excess = text.length >= SHAPE_SCAN_FROM ? shapeExcess(text, BODY_LIMITS) : undefined;
    if (excess !== undefined) {
      context.answer(this.#error(null, TOO_COSTLY[excess]().toObject()), NO_AFTER);
      return;
    }
    const common = commonRequest(text);
    if (common !== undefined) {
      this.#call(common.id, true, common.method, common.params, context, undefined, 0, common.paramsText, ascii);
      return;
    }
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch (error) {
      context.answer(this.#error(null, new ParseError(`parse error: ${(error as Error).message}`).toObject()), NO_AFTER);
      return;
    }
    if (!Array.isArray(message)) {
      this.#one(message, context, undefined, 0, text, ascii);
      return;
    }
    if (message.length === 0) {
      context.answer(this.#error(null, new InvalidRequestError('invalid request: empty batch').toObject()), NO_AFTER);
      return;
    }
    if (message.length > this.#limits.maxBatchSize) {
      // A batch is answered with an array, here of one error under its first call's id, as geth
      // answers: web3.js matches a batch's answer by that id (a lone object it dropped, and timed out).
      const error = new InvalidRequestError(`invalid request: batch of ${message.length} exceeds the limit of ${this.#limits.maxBatchSize} (limits.maxBatchSize)`);
      context.answer(Buffer.concat([OPEN_BRACKET, this.#error(firstCallId(message, text), error.toObject()), CLOSE_BRACKET]), NO_AFTER);
      return;
    }
    const batch = new BatchAnswer(context, message.length, this.#limits.maxAnswerBytes);
    const texts = requestTexts(text, message.length);
    message.forEach((item, index) => this.#one(item, context, batch, index, texts?.[index], ascii));
  }

  /**
   * One request: invalid ones are answered at once; valid ones become a ClientCall. `text` is the
   * request's own JSON, for its params' text (params-text.ts).
   */
  #one(request: unknown, context: DispatchContext, batch: BatchAnswer | undefined, index: number, text: string | undefined, ascii: boolean): void {
    if (request === null || typeof request !== 'object' || Array.isArray(request)) {
      answerRequest(context, batch, index, this.#error(null, new InvalidRequestError('invalid request: expected a JSON-RPC 2.0 request object').toObject()));
      return;
    }
    const { jsonrpc, id, method } = request as Record<string, unknown>;
    // "params": null is taken for no params, as geth and anvil take it (clients that send it exist).
    const params = (request as Record<string, unknown>)['params'] ?? undefined;
    const hasId = 'id' in request;
    if (hasId && id !== null && typeof id !== 'string' && typeof id !== 'number') {
      answerRequest(context, batch, index, this.#error(null, new InvalidRequestError('invalid request: "id" must be a string, number or null').toObject()));
      return;
    }
    const replyId = hasId ? answerId(id as JsonRpcId, text) : null;
    const problem =
      jsonrpc !== '2.0'
        ? 'invalid request: "jsonrpc" must be "2.0"'
        : typeof method !== 'string' || method.length === 0
          ? 'invalid request: "method" must be a non-empty string'
          : method.length > MAX_METHOD_LENGTH
            ? `invalid request: "method" is longer than ${MAX_METHOD_LENGTH} characters`
            : params !== undefined && (params === null || typeof params !== 'object')
              ? 'invalid request: "params" must be an array or an object'
              : undefined;
    if (problem !== undefined) {
      answerRequest(context, batch, index, this.#error(replyId, new InvalidRequestError(problem).toObject()));
      return;
    }
    const paramsJson = params !== undefined && text !== undefined ? paramsText(text) : undefined;
    this.#call(replyId, hasId, canonicalMethod(method as string), params, context, batch, index, paramsJson, ascii);
  }

  /**
   * A valid request: refused over the client's rate or the in-flight limit, else a ClientCall.
   * `paramsJson` is its params' text as the client wrote it, when known (it goes to the node as it is).
   * `held`: a batch's call that waited for a slot (held-calls.ts), started now.
   */
  #call(
    replyId: ReplyId,
    hasId: boolean,
    method: string,
    params: unknown,
    context: DispatchContext,
    batch: BatchAnswer | undefined,
    index: number,
    paramsJson: string | undefined,
    ascii: boolean,
    held = false,
  ): void {
    const refusal = held ? this.#heldRefusal(method, context) : this.#refusal(method, context);
    if (refusal === undefined && (held || context.inFlight < this.#limits.maxInFlightPerConnection)) {
      const call = new ClientCall(context, replyId, hasId, batch, index, this.#telemetry);
      try {
        this.#execute(method, params, context, call, paramsJson, ascii);
      } catch (error) {
        call.reject(error);
      }
      return;
    }
    // A batch's call past the in-flight limit waits for a slot.
    if (refusal === undefined && batch !== undefined) {
      context.held ??= new HeldCalls(context, this.#limits.maxInFlightPerConnection, this.#limits.maxBatchSize);
      if (context.held.hold(() => this.#call(replyId, hasId, method, params, context, batch, index, paramsJson, ascii, true))) return;
    }
    const error = refusal ?? new LimitExceededError(`too many requests in flight on this connection: at most ${this.#limits.maxInFlightPerConnection} (limits.maxInFlightPerConnection)`);
    // A client that left is not answered, but its batch is settled: an HTTP request counts as open
    // until it is, and a shutdown waited for it.
    answerRequest(context, batch, index, hasId && error !== GONE ? this.#error(replyId, error.toObject()) : undefined);
  }

  /** Why a held call is not started after all: its client left, or evmux began to shut down while it waited. */
  #heldRefusal(method: string, context: DispatchContext): LimitExceededError | UpstreamUnavailableError | undefined {
    if (context.closed) return GONE;
    return this.#refusing && !servedWhileShuttingDown(method) ? SHUTTING_DOWN() : undefined;
  }

  /** Why one more request from this client is refused as it comes, if it is: shutting down, or over its rate. */
  #refusal(method: string, context: DispatchContext): LimitExceededError | UpstreamUnavailableError | undefined {
    if (this.#refusing && !servedWhileShuttingDown(method)) return SHUTTING_DOWN();
    if (this.#rateLimit !== undefined && !this.#rateLimit.take(context.sessionKey)) {
      this.#telemetry.clientRejected('rate_limit');
      const { perSecond, burst } = this.#rateLimit;
      return new LimitExceededError(`rate limit: this client may send ${perSecond} requests per second, ${burst} at once (limits.requestsPerSecondPerClient); retry later`);
    }
    return undefined;
  }

  /** Errors thrown here reach #call, which answers with them. */
  #execute(method: string, params: unknown, context: DispatchContext, call: ClientCall, paramsJson: string | undefined, ascii: boolean): void {
    // methods.allow and methods.deny hold for subscriptions too: an operator may run calls only.
    // In geth's words: ethers v6 falls back from filters to polling eth_getLogs only on a -32601
    // whose message matches /the method .* does not exist/.
    const verdict = this.#policy(method);
    if (verdict === 'denied') throw new MethodNotFoundError(`the method ${method} does not exist/is not available: not allowed on this gateway`);
    if (verdict === 'unknown') throw new MethodNotFoundError(`the method ${method} does not exist/is not available`);
    if (method === 'eth_subscribe' || method === 'eth_unsubscribe') {
      const host = context.subscriptions;
      if (host === undefined) throw new MethodNotFoundError(`${method} is only available over WebSocket`);
      if (method === 'eth_unsubscribe') call.resolve(resultReply(host.unsubscribe(unsubscribeId(params))));
      else this.#subscribe(host, params, call);
      return;
    }
    if (params !== undefined && !Array.isArray(params)) {
      throw new InvalidParamsError(`${method}: params must be an array`);
    }
    const unforwardable = unforwardableParams(params, paramsJson);
    if (unforwardable !== undefined) throw new InvalidParamsError(`${method}: ${unforwardable}`);
    if (method === 'eth_getLogs' || method === 'eth_newFilter') checkFilterSize(method, params?.[0], this.#filterLimits);
    this.#router.call(method, params ?? [], context, call, paramsJson, ascii);
  }

  #subscribe(host: SubscriptionHost, params: unknown, call: ClientCall): void {
    host.subscribe(params).then(
      ({ id, start }) => {
        call.after = start;
        call.resolve(resultReply(id));
      },
      (error: unknown) => call.reject(error),
    );
  }

  #error(id: ReplyId, error: JsonRpcErrorObject): Buffer {
    return errorResponse(id, error, this.#telemetry);
  }
}

/**
 * eth_unsubscribe's one parameter, the id an eth_subscribe answered with. Anything else is refused
 * by name (as a node does): answered `false`, it read as "not subscribed", hiding the client's bug.
 */
function unsubscribeId(params: unknown): string {
  if (!Array.isArray(params) || params.length !== 1 || typeof params[0] !== 'string') {
    const got = params === undefined ? 'no params' : JSON.stringify(params).slice(0, 80);
    throw new InvalidParamsError(`eth_unsubscribe expects [subscriptionId], the string an eth_subscribe answered with; got ${got}`);
  }
  return params[0];
}
