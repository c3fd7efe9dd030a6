/**
 * Plain calls: pick a node (node-picker.ts), retry node-side failures on another node within a
 * deadline (method-timeouts.ts), hand filter methods to the filter keeper and signed transactions
 * to signed-send.ts, never send another write again once a node may have got it, and send a
 * client's calls that depend on a node's transaction pool to the node it sent through lately
 * (writer-nodes.ts).
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BalancerStrategy } from '../balancer/strategy.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { InvalidParamsError, UpstreamUnavailableError } from '../jsonrpc/errors.js';
import { failedOutcome } from '../request-outcome.js';
import type { SessionAffinity } from '../subs/affinity.js';
import type { RequestOutcome, Telemetry } from '../telemetry.js';
import { backoffDelay } from '../upstream/backoff.js';
import { isAnswerTooLarge, isSocketGone, UpstreamFailure } from '../upstream/errors.js';
import { NODE_WAIT_MS, type UpstreamPool } from '../upstream/pool.js';
import { answeredBlockNumber, isNullResult, lastBlockNumber, replyResult, resolveLater, resultReply, settle, type ReplySink, type UpstreamReply } from '../upstream/reply.js';
import type { Upstream } from '../upstream/upstream.js';
import { ParamsJson } from '../upstream/request-frame.js';
import { blockMissingMayBeLag, nullMayBeLag, nullMeansBlockMissing, requiredBlock } from './block-requirement.js';
import { giveUp, isTimeout, outcomeUnknown } from './call-failures.js';
import { quantity } from '../jsonrpc/hex.js';
import { feeHistoryNewest, LAST_BLOCK_NUMBER_TELLS, noteAnsweredHead } from './answered-head.js';
import { FilterKeeper } from './filter-keeper.js';
import { HandedBlockHashes } from './handed-block-hashes.js';
import { MethodTimeouts } from './method-timeouts.js';
import { highestHead, NodePicker } from './node-picker.js';
import { isPoolDependent } from './recent-writers.js';
import { isClosedUnderIt, isFilterCreator, isFilterUser, isRetryableRpcError, isSignedSend, isWrite, mayHaveReachedNode } from './retry-policy.js';
import { SignedSend } from './signed-send.js';
import { WriterNodes } from './writer-nodes.js';

export interface CallContext {
  /** the session's affinity key, for filter methods */
  readonly sessionKey: string;
  /** the client's address (behind a trusted proxy, the one it names), for the filters it may install */
  readonly clientIp: string;
  /** one client: a WebSocket connection (`ws:N`), or over HTTP its session key (`http:KEY`) (a node's socket for clients whose answers pass maxAnswerBytes) */
  readonly clientId: string;
}

type Settings = Pick<Config, 'retry' | 'requestTimeoutMs' | 'limits' | 'methods' | 'subscriptions' | 'health'>;

const NO_NODES: ReadonlySet<string> = new Set();

/**
 * Waits before asking again for a block some node has reported but none at that height can serve:
 * anvil_reorg and real reorgs leave a node without its tip for a few milliseconds, and the node
 * first to a block is ahead of the others by about as long. 300 ms in all, then the null stands.
 */
const NULL_RECHECK_DELAYS_MS: readonly number[] = [20, 40, 80, 160];

export class CallRouter {
  readonly #pool: UpstreamPool;
  readonly #settings: Settings;
  readonly #telemetry: Telemetry;
  readonly #timeouts: MethodTimeouts;
  readonly #picker: NodePicker;
  readonly filters: FilterKeeper;
  /** the node each client sent a transaction through lately, for its next pool-dependent calls */
  readonly #writers: WriterNodes;
  readonly #signed: SignedSend;
  /** blocks block filters handed over lately, by hash: the node that handed one over has it */
  readonly #handed = new HandedBlockHashes();

  constructor(pool: UpstreamPool, strategy: BalancerStrategy, affinity: SessionAffinity, settings: Settings, telemetry: Telemetry, logger: Logger) {
    this.#pool = pool;
    this.#settings = settings;
    this.#telemetry = telemetry;
    this.#timeouts = new MethodTimeouts(settings);
    this.#picker = new NodePicker(pool, strategy, settings.health.maxLagBlocks);
    this.#writers = new WriterNodes(pool, this.#picker);
    const attempt = this.#attempt.bind(this);
    this.#signed = new SignedSend(pool, settings.retry, this.#timeouts, this.#writers, this.#picker, attempt);
    const calls = {
      attempt: (upstream: Upstream, method: string, params: unknown, caller: CallContext) => attempt(upstream, method, params, this.#timeouts.timeoutOf(method), caller),
      pick: (exclude: ReadonlySet<string>, minHead?: bigint) => this.#picker.pick(exclude, minHead, minHead !== undefined),
      read: (method: string, params: unknown, caller: CallContext) =>
        new Promise<UpstreamReply>((resolve, reject) => this.#withRetries(method, params, { resolve, reject }, undefined, false, caller)),
    };
    this.filters = new FilterKeeper(pool, affinity, calls, this.#handed, settings, telemetry, logger);
  }

  /**
   * Route one plain call; its reply or error goes to `sink`. `paramsJson`, the client's own text of
   * `params` when the dispatcher has it, is what nodes are sent instead of a serialization of them
   * (`ascii` when all its characters are).
   */
  call(method: string, params: unknown, context: CallContext, sink: ReplySink, paramsJson?: string, ascii = false): void {
    if (isFilterCreator(method)) settle(this.filters.create(method, params, context), sink);
    else if (isFilterUser(method)) settle(this.filters.use(method, params, context), sink);
    else if (isSignedSend(method)) settle(this.#signed.send(method, params, context), sink);
    // Every node was checked to serve this chain before it took traffic, so its id is evmux's to give:
    // wallets ask for it before most of what they do, and the answer costs no round trip.
    else if (method === 'eth_chainId' && this.#pool.chain.chainIdHex !== undefined) resolveLater(sink, resultReply(this.#pool.chain.chainIdHex));
    // So is the network id, once a node gave it: viem's WebSocket keep-alive asks for it every 30 s.
    else if (method === 'net_version' && this.#pool.chain.netVersion !== undefined) resolveLater(sink, resultReply(this.#pool.chain.netVersion));
    else this.#withRetries(method, params, sink, paramsJson, ascii, context);
  }

  /**
   * The first attempt is one FirstAttempt object handed to the node, without the retry loop: most
   * calls succeed at once, and the loop's state (an async frame, the set of nodes tried, backoff)
   * and a promise per layer cost allocations on every call otherwise.
   */
  #withRetries(method: string, parsedParams: unknown, sink: ReplySink, paramsJson: string | undefined, ascii: boolean, caller: CallContext, waited = false): void {
    // Deadlines on performance.now(): optimized code calls it directly, and Date.now() through V8's runtime.
    const deadlineMs = this.#timeouts.deadlineOf(method);
    const deadline = performance.now() + deadlineMs;
    const back = waited ? undefined : this.#writers.untilBackFor(method, caller, parsedParams, deadline);
    if (back !== undefined) {
      void back.then(() => {
        try {
          this.#withRetries(method, parsedParams, sink, paramsJson, ascii, caller, true);
        } catch (error) {
          sink.reject(error);
        }
      });
      return;
    }
    const minHead = requiredBlock(method, parsedParams);
    // From here on the params are only passed on to nodes.
    const params = paramsJson === undefined ? parsedParams : new ParamsJson(paramsJson, ascii);
    const writer = this.#writers.forCall(method, caller, minHead, parsedParams);
    const first = writer ?? this.#picker.pick(NO_NODES, minHead);
    // A client's first send makes its node the client's writer node at once: sends made together follow it.
    if (writer === undefined && first !== undefined && isPoolDependent(method) && isWrite(method)) this.#writers.note(caller, first.name);
    if (first === undefined) {
      settle(this.#retry(method, params, deadline, minHead, new Set(), undefined, 0, caller), sink);
      return;
    }
    const timeout = Math.min(this.#timeouts.timeoutOf(method), deadlineMs);
    first.send(method, params, timeout, new FirstAttempt(this.#afterFirst, method, params, first, deadline, minHead, sink, caller));
  }

  /** Bound once: where every first attempt's outcome goes, inside the socket's handlers (a throw becomes the call's error). */
  readonly #afterFirst = (attempt: FirstAttempt, reply: UpstreamReply | undefined, error: unknown): void => {
    const { method, params, upstream, deadline, minHead, sink, caller } = attempt;
    try {
      this.#record(method, upstream, attempt.started, reply, error);
      if (reply === undefined && (!(error instanceof UpstreamFailure) || isAnswerTooLarge(error))) {
        sink.reject(this.#callerError(method, error));
        return;
      }
      if (reply === undefined && isWrite(method) && mayHaveReachedNode(error as UpstreamFailure)) {
        sink.reject(outcomeUnknown(method, error as UpstreamFailure));
        return;
      }
      const done = reply === undefined ? undefined : this.#conclude(method, params, upstream, reply, NO_NODES, deadline, minHead, caller);
      if (done === undefined) settle(this.#retry(method, params, deadline, minHead, new Set([upstream.name]), reply ?? error, 1, caller), sink);
      else if (done instanceof Promise) settle(done, sink);
      else sink.resolve(done);
    } catch (thrown) {
      sink.reject(thrown);
    }
  };

  /** Attempts after the first, on other nodes (all of them again once each was tried), with backoff. */
  async #retry(
    method: string,
    params: unknown,
    deadline: number,
    minHead: bigint | undefined,
    tried: Set<string>,
    lastFailure: unknown,
    firstAttempt: number,
    caller: CallContext,
  ): Promise<UpstreamReply> {
    const { maxAttempts, backoffBaseMs, backoffMaxMs } = this.#settings.retry;
    let lastError = lastFailure;
    // Tries after a socket closed under the call (isClosedUnderIt) are free, up to as many again:
    // the first attempt's (made before this loop) as well as the loop's own.
    let free = maxAttempts;
    let attempt = firstAttempt;
    if (isClosedUnderIt(lastFailure) && free-- > 0) attempt--;
    // A write (eth_sendTransaction: tried again only when it never left evmux) follows the
    // client's writer node as signed sends do.
    const send = isWrite(method) && isPoolDependent(method);
    // A call that follows the client's writer node goes back to it when its socket closed under the
    // call (a blip: it is back in milliseconds), not to a node without the client's last transaction.
    // The params as parsed, for the writer node's checks (a retry's are the client's text): parsed
    // once, when some client has a writer node.
    let parsed = params instanceof ParamsJson ? undefined : { params };
    const sent = (): unknown => (parsed ??= { params: JSON.parse((params as ParamsJson).text) as unknown }).params;
    const writer = (): Upstream | undefined => {
      const node = this.#writers.active ? this.#writers.forCall(method, caller, minHead, sent()) : undefined;
      return node !== undefined && (!tried.has(node.name) || isSocketGone(lastError)) ? node : undefined;
    };
    const pick = (): Upstream | undefined => (send ? this.#writers.sendTarget(caller, tried) : (writer() ?? this.#picker.pick(tried, minHead, false, true)));
    for (; attempt < maxAttempts; attempt++) {
      if (attempt > 0) {
        const delay = backoffDelay(attempt - 1, { baseMs: backoffBaseMs, maxMs: backoffMaxMs });
        if (performance.now() + delay >= deadline) break;
        if (delay > 0) await sleep(delay);
      }
      if (this.#writers.active) await this.#writers.untilBackFor(method, caller, sent(), deadline);
      let upstream = pick();
      if (upstream === undefined && tried.size > 0) {
        tried.clear();
        upstream = pick();
      }
      if (upstream === undefined && (await this.#pool.untilServing(Math.min(deadline, performance.now() + NODE_WAIT_MS)))) {
        upstream = pick();
      }
      // The nodes that had the block the read names went away: the others get it within a block.
      // (With none serving at all, the read fails as every call does then.)
      const serving = this.#pool.serving().length > 0;
      if (upstream === undefined && serving && minHead !== undefined && (await this.#pool.untilHead(minHead, Math.min(deadline, performance.now() + NODE_WAIT_MS)))) {
        upstream = pick();
      }
      if (upstream === undefined) {
        if (lastError === undefined && serving && minHead !== undefined && minHead <= this.#pool.highestSeen) {
          throw new UpstreamUnavailableError(`${method}: no usable node has block ${minHead} yet (the node that had it went away); try again shortly`);
        }
        break;
      }
      tried.add(upstream.name);
      const timeout = Math.min(this.#timeouts.timeoutOf(method), deadline - performance.now());
      if (timeout <= 0) break;
      try {
        const reply = await this.#attempt(upstream, method, params, timeout, caller);
        const done = this.#conclude(method, params, upstream, reply, tried, deadline, minHead, caller);
        if (done !== undefined) return await done;
        lastError = reply;
      } catch (error) {
        if (!(error instanceof UpstreamFailure)) throw error;
        if (isWrite(method) && mayHaveReachedNode(error)) throw outcomeUnknown(method, error);
        lastError = error;
        if (isClosedUnderIt(error) && free-- > 0) attempt--;
      }
    }
    // Out of time: the error names the settings that bound it.
    return giveUp(method, lastError, isTimeout(lastError) || performance.now() >= deadline ? this.#timeouts.limitsOf(method) : undefined);
  }

  /**
   * What a node's reply means for the call: the answer (caller's errors included), one more try on
   * another node when a null may only mean this node lags, or undefined to try elsewhere.
   */
  #conclude(
    method: string,
    params: unknown,
    upstream: Upstream,
    reply: UpstreamReply,
    tried: ReadonlySet<string>,
    deadline: number,
    minHead: bigint | undefined,
    caller: CallContext,
  ): UpstreamReply | Promise<UpstreamReply> | undefined {
    if (method === 'eth_blockNumber' && reply.error === undefined) return this.#headNotBehind(upstream, reply);
    if (method === 'eth_getBlockByNumber' && reply.error === undefined) noteAnsweredHead(upstream, params, answeredBlockNumber(reply));
    else if (LAST_BLOCK_NUMBER_TELLS.has(method) && reply.error === undefined) noteAnsweredHead(upstream, params, lastBlockNumber(reply));
    else if (method === 'eth_feeHistory' && reply.error === undefined) noteAnsweredHead(upstream, params, feeHistoryNewest(reply));
    if (nullMayBeLag(method) && isNullResult(reply)) return this.#secondOpinion(method, params, upstream, reply, tried, deadline, minHead, caller);
    if (reply.error !== undefined && blockMissingMayBeLag(method, reply.error) && this.#otherNode(method, params, upstream, tried, minHead) !== undefined) {
      return this.#secondOpinion(method, params, upstream, reply, tried, deadline, minHead, caller);
    }
    if (reply.error === undefined && isPoolDependent(method) && isWrite(method)) this.#writers.note(caller, upstream.name);
    // A write's error is the node's word on it, whatever it says: a timeout or "internal error" may
    // come after the node carried it out.
    if (reply.error === undefined || !isRetryableRpcError(reply.error) || isWrite(method)) return reply;
    return undefined;
  }

  /**
   * A node's answer to eth_blockNumber: its head, noted between probes (a client that learns head N
   * and asks for block N is then sent to a node known to have it), and raised to the highest head a
   * serving node has. Nodes within health.maxLagBlocks serve, and they are rarely all at one height:
   * taken as each node says it, a client polling eth_blockNumber saw it go back whenever its next
   * call went to a node a block behind, and ethers' block polling then reported the block it had
   * reported already once more.
   */
  #headNotBehind(upstream: Upstream, reply: UpstreamReply): UpstreamReply {
    let answered: bigint | undefined;
    try {
      answered = quantity(replyResult(reply));
    } catch {
      return reply; // not JSON: the client gets the node's bytes as they are
    }
    if (answered === undefined) return reply;
    upstream.noteReportedHead(answered);
    const best = highestHead(this.#pool.serving());
    return best > answered ? resultReply(`0x${best.toString(16)}`) : reply;
  }

  /**
   * A null (or "block missing") that may only mean this node has not got the data (yet, or any
   * more: mid-reorg its head can be behind the one it last reported): ask, once, another node at
   * the block the read names, or else a node further ahead than this one (#otherNode). For a
   * transaction by hash, the client's writer node first: a transaction it sent that is still
   * pending may be in that node's pool only. A null for a block at a height some node has
   * reported stands only after #askAgainShortly: that block exists, or will again within moments.
   */
  async #secondOpinion(
    method: string,
    params: unknown,
    upstream: Upstream,
    reply: UpstreamReply,
    tried: ReadonlySet<string>,
    deadline: number,
    minHead: bigint | undefined,
    caller: CallContext,
  ): Promise<UpstreamReply> {
    let other = method === 'eth_getTransactionByHash' ? this.#writers.besides(upstream, caller) : undefined;
    other ??= this.#otherNode(method, params, upstream, tried, minHead);
    const answer = other === undefined ? reply : await this.#attempt(other, method, params, this.#timeouts.timeLeft(method, deadline), caller).catch(() => reply);
    if (!isNullResult(answer) || minHead === undefined || minHead > this.#pool.bestHead || !nullMeansBlockMissing(method)) return answer;
    return this.#askAgainShortly(method, params, minHead, deadline, answer, caller);
  }

  /**
   * For a read of a block by a hash a block filter handed over lately, the node that handed it over
   * (healthy, not asked yet): it has that block, though evmux may not know its head yet (a block
   * filter's answer does not tell it). Else #nodeAhead.
   */
  #otherNode(method: string, params: unknown, upstream: Upstream, tried: ReadonlySet<string>, minHead: bigint | undefined): Upstream | undefined {
    const handedBy = this.#handed.nodeFor(method, params);
    if (handedBy !== undefined && handedBy !== upstream && handedBy.healthy && !tried.has(handedBy.name)) return handedBy;
    return this.#nodeAhead(upstream, tried, minHead);
  }

  /**
   * A node other than those asked that has the block the read names, or else is ahead of `upstream`.
   * For a block past every head known (the client heard of it elsewhere: another replica, a node
   * between two probes), another node at the highest head: it may have it by now.
   */
  #nodeAhead(upstream: Upstream, tried: ReadonlySet<string>, minHead: bigint | undefined): Upstream | undefined {
    const exclude = new Set([...tried, upstream.name]);
    const ahead = this.#picker.pick(exclude, minHead ?? upstream.headNumber + 1n, true);
    if (ahead !== undefined || minHead === undefined || minHead <= this.#pool.highestSeen) return ahead;
    return this.#picker.pick(exclude);
  }

  /**
   * A null for a height some node has reported: asked again, of a node at that height, after each
   * of NULL_RECHECK_DELAYS_MS while the deadline allows. The null stands if none has it by then.
   */
  async #askAgainShortly(method: string, params: unknown, height: bigint, deadline: number, reply: UpstreamReply, caller: CallContext): Promise<UpstreamReply> {
    // Nodes that answered null are asked again only when no other node is at that height.
    const answeredNull = new Set<string>();
    for (const delay of NULL_RECHECK_DELAYS_MS) {
      if (performance.now() + delay >= deadline) break;
      await sleep(delay);
      const upstream = this.#picker.pick(answeredNull, height, true) ?? this.#picker.pick(NO_NODES, height, true);
      if (upstream === undefined) continue;
      const again = await this.#attempt(upstream, method, params, this.#timeouts.timeLeft(method, deadline), caller).catch(() => undefined);
      if (again !== undefined && !isNullResult(again)) return again;
      answeredNull.add(upstream.name);
    }
    return reply;
  }

  /** One try on one node; `caller` is whose call it is, for that node's fair queue. */
  #attempt(upstream: Upstream, method: string, params: unknown, timeoutMs: number, caller: CallContext): Promise<UpstreamReply> {
    const started = performance.now();
    return upstream.request(method, params, timeoutMs, caller).then(
      (reply) => {
        this.#record(method, upstream, started, reply, undefined);
        return reply;
      },
      (error: unknown) => {
        this.#record(method, upstream, started, undefined, error);
        throw this.#callerError(method, error);
      },
    );
  }

  /**
   * An answer over the limit is the caller's to hear about, not a node's failure to try elsewhere:
   * every node would send it. Invalid params (-32602, as Alchemy answers a too wide eth_getLogs), not
   * -32005: viem retries a -32005 three times as a rate limit, and each time a node would send it all.
   */
  #callerError(method: string, error: unknown): unknown {
    if (!isAnswerTooLarge(error)) return error;
    const limit = this.#settings.limits.maxAnswerBytes;
    return new InvalidParamsError(`${method}: the node's answer is larger than this gateway's limit of ${limit} bytes (limits.maxAnswerBytes); ask for less, e.g. a narrower block range`);
  }

  /** One attempt's outcome in the per-call metrics: its reply, or else its error (request-outcome.ts). */
  #record(method: string, upstream: Upstream, started: number, reply: UpstreamReply | undefined, error: unknown): void {
    const outcome: RequestOutcome = reply === undefined ? failedOutcome(error) : reply.error !== undefined ? 'rpc_error' : 'ok';
    this.#telemetry.requestFinished(method, upstream.name, outcome, (performance.now() - started) / 1000);
  }
}

/**
 * The first try of a plain call as one object handed down to the node's socket, which settles it
 * with the reply or a failure; the router's handler takes it from there.
 */
class FirstAttempt implements ReplySink {
  readonly started = performance.now();

  constructor(
    readonly onOutcome: (attempt: FirstAttempt, reply: UpstreamReply | undefined, error: unknown) => void,
    readonly method: string,
    readonly params: unknown,
    readonly upstream: Upstream,
    readonly deadline: number,
    readonly minHead: bigint | undefined,
    readonly sink: ReplySink,
    /** whose call it is, for a busy node's fair queue */
    readonly caller: CallContext,
  ) {}

  /** Read only when the node is busy: over HTTP the session key may cost a system call. */
  get client(): string {
    return this.caller.sessionKey;
  }

  get clientId(): string {
    return this.caller.clientId;
  }

  resolve(reply: UpstreamReply): void {
    this.onOutcome(this, reply, undefined);
  }

  reject(error: unknown): void {
    this.onOutcome(this, undefined, error);
  }
}
