/**
 * Plain calls: pick a node with the balancer, retry node-side failures on another node within a
 * deadline, hand filter methods to the filter keeper, never send a signed transaction twice to the
 * same node, never send another write again once a node may have got it, and send a client's calls
 * that depend on a node's transaction pool to the node it sent through lately.
 */
import { performance } from 'node:perf_hooks';
import { keccak256 } from 'viem';
import type { BalancerStrategy } from '../balancer/strategy.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { InvalidParamsError, LimitExceededError, UpstreamUnavailableError } from '../jsonrpc/errors.js';
import type { SessionAffinity } from '../subs/affinity.js';
import type { RequestOutcome, Telemetry } from '../telemetry.js';
import { backoffDelay } from '../upstream/backoff.js';
import { UpstreamFailure } from '../upstream/errors.js';
import { NODE_WAIT_MS, type UpstreamPool } from '../upstream/pool.js';
import { answeredBlockNumber, isNullResult, lastBlockNumber, replyResult, resolveLater, resultReply, settle, type ReplySink, type UpstreamReply } from '../upstream/reply.js';
import type { Upstream } from '../upstream/upstream.js';
import { ParamsJson } from '../upstream/request-frame.js';
import { blockMissingMayBeLag, namesPendingBlock, nullMayBeLag, nullMeansBlockMissing, requiredBlock } from './block-requirement.js';
import { quantity } from '../jsonrpc/hex.js';
import { FilterKeeper } from './filter-keeper.js';
import { isPoolDependent, RecentWriters } from './recent-writers.js';
import {
  isAlreadyKnown,
  isAnswerTooLarge,
  isClosedUnderIt,
  isFilterCreator,
  isFilterUser,
  isNonceTaken,
  isRetryableRpcError,
  isSignedSend,
  isWrite,
  mayHaveReachedNode,
} from './retry-policy.js';

export interface CallContext {
  /** the session's affinity key, for filter methods */
  readonly sessionKey: string;
  /** the client's address (behind a trusted proxy, the one it names), for the filters it may install */
  readonly clientIp: string;
}

type Settings = Pick<Config, 'retry' | 'requestTimeoutMs' | 'limits' | 'methods' | 'subscriptions' | 'health'>;

const NO_NODES: ReadonlySet<string> = new Set();

/**
 * Waits before asking again for a block some node has reported but none at that height can serve:
 * anvil_reorg and real reorgs leave a node without its tip for a few milliseconds, and the node
 * first to a block is ahead of the others by about as long. 300 ms in all, then the null stands.
 */
const NULL_RECHECK_DELAYS_MS: readonly number[] = [20, 40, 80, 160];


/** The most a signed transaction no node answered waits for a node to say whether it has it. */
const UNANSWERED_SEND_CHECK_MS = 2000;

export class CallRouter {
  readonly #pool: UpstreamPool;
  readonly #strategy: BalancerStrategy;
  readonly #affinity: SessionAffinity;
  readonly #settings: Settings;
  readonly #telemetry: Telemetry;
  /** methods.timeoutMs: per-attempt timeouts of the methods that have their own */
  readonly #timeouts: ReadonlyMap<string, number>;
  readonly filters: FilterKeeper;
  /** the node each client sent a transaction through lately, for its next pool-dependent calls */
  readonly #writers = new RecentWriters();
  /** health.maxLagBlocks: reads of blocks this close to the highest head go to nodes at it (#pick) */
  readonly #recentBlocks: bigint;

  constructor(pool: UpstreamPool, strategy: BalancerStrategy, affinity: SessionAffinity, settings: Settings, telemetry: Telemetry, logger: Logger) {
    this.#pool = pool;
    this.#strategy = strategy;
    this.#affinity = affinity;
    this.#settings = settings;
    this.#telemetry = telemetry;
    this.#timeouts = new Map(Object.entries(settings.methods.timeoutMs));
    this.#recentBlocks = BigInt(settings.health.maxLagBlocks);
    const calls = {
      attempt: (upstream: Upstream, method: string, params: unknown, caller: CallContext) => this.#attempt(upstream, method, params, this.#timeoutOf(method), caller),
      pick: (exclude: ReadonlySet<string>) => this.#pick(exclude),
    };
    this.filters = new FilterKeeper(pool, affinity, calls, settings, telemetry, logger);
  }

  /**
   * Route one plain call; its reply or error goes to `sink`. `paramsJson`, the client's own text of
   * `params` when the dispatcher has it, is what nodes are sent instead of a serialization of them
   * (`ascii` when all its characters are).
   */
  call(method: string, params: unknown, context: CallContext, sink: ReplySink, paramsJson?: string, ascii = false): void {
    if (isFilterCreator(method)) settle(this.filters.create(method, params, context), sink);
    else if (isFilterUser(method)) settle(this.filters.use(method, params, context), sink);
    else if (isSignedSend(method)) settle(this.#sendSigned(method, params, context), sink);
    // Every node was checked to serve this chain before it took traffic, so its id is evmux's to give:
    // wallets ask for it before most of what they do, and the answer costs no round trip.
    else if (method === 'eth_chainId' && this.#pool.chain.chainIdHex !== undefined) resolveLater(sink, resultReply(this.#pool.chain.chainIdHex));
    else this.#withRetries(method, params, sink, paramsJson, ascii, context);
  }

  /**
   * The first attempt is one FirstAttempt object handed to the node, without the retry loop: most
   * calls succeed at once, and the loop's state (an async frame, the set of nodes tried, backoff)
   * and a promise per layer cost allocations on every call otherwise.
   */
  #withRetries(method: string, parsedParams: unknown, sink: ReplySink, paramsJson: string | undefined, ascii: boolean, caller: CallContext): void {
    // Deadlines on performance.now(): optimized code calls it directly, and Date.now() through V8's runtime.
    const deadlineMs = this.#deadlineOf(method);
    const deadline = performance.now() + deadlineMs;
    const minHead = requiredBlock(method, parsedParams);
    // From here on the params are only passed on to nodes.
    const params = paramsJson === undefined ? parsedParams : new ParamsJson(paramsJson, ascii);
    const writer = this.#writerNode(method, caller, minHead, parsedParams);
    const first = writer ?? this.#pick(NO_NODES, minHead);
    // A client's first send makes its node the client's writer node at once: sends made together follow it.
    if (writer === undefined && first !== undefined && isPoolDependent(method) && isWrite(method)) this.#writers.note(caller.sessionKey, first.name);
    if (first === undefined) {
      settle(this.#retry(method, params, deadline, minHead, new Set(), undefined, 0, caller), sink);
      return;
    }
    const timeout = Math.min(this.#timeoutOf(method), deadlineMs);
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
    const pick = (): Upstream | undefined => (send ? this.#sendTarget(method, caller, tried) : this.#pick(tried, minHead));
    for (; attempt < maxAttempts; attempt++) {
      if (attempt > 0) {
        const delay = backoffDelay(attempt - 1, { baseMs: backoffBaseMs, maxMs: backoffMaxMs });
        if (performance.now() + delay >= deadline) break;
        if (delay > 0) await sleep(delay);
      }
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
      const timeout = Math.min(this.#timeoutOf(method), deadline - performance.now());
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
    return this.#giveUp(method, lastError);
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
    else if ((method === 'eth_getLogs' || method === 'eth_getTransactionReceipt') && reply.error === undefined) noteAnsweredHead(upstream, params, lastBlockNumber(reply));
    if (nullMayBeLag(method) && isNullResult(reply)) return this.#secondOpinion(method, params, upstream, reply, tried, deadline, minHead, caller);
    if (reply.error !== undefined && blockMissingMayBeLag(method, reply.error) && this.#nodeAhead(upstream, tried, minHead) !== undefined) {
      return this.#secondOpinion(method, params, upstream, reply, tried, deadline, minHead, caller);
    }
    if (reply.error === undefined && isPoolDependent(method) && isWrite(method)) this.#writers.note(caller.sessionKey, upstream.name);
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
   * the block the read names, or else a node further ahead than this one. For a transaction by
   * hash, the client's writer node first: a transaction it sent that is still pending may be in
   * that node's pool only. A null for a block at a height some node has reported stands only after
   * #askAgainShortly: that block exists, or will again within moments.
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
    let other = method === 'eth_getTransactionByHash' ? this.#writerBesides(upstream, caller) : undefined;
    other ??= this.#nodeAhead(upstream, tried, minHead);
    const answer = other === undefined ? reply : await this.#attempt(other, method, params, this.#timeLeft(method, deadline), caller).catch(() => reply);
    if (!isNullResult(answer) || minHead === undefined || minHead > this.#pool.bestHead || !nullMeansBlockMissing(method)) return answer;
    return this.#askAgainShortly(method, params, minHead, deadline, answer, caller);
  }

  /**
   * A node other than those asked that has the block the read names, or else is ahead of `upstream`.
   * For a block past every head known (the client heard of it elsewhere: another replica, a node
   * between two probes), another node at the highest head: it may have it by now.
   */
  #nodeAhead(upstream: Upstream, tried: ReadonlySet<string>, minHead: bigint | undefined): Upstream | undefined {
    const exclude = new Set([...tried, upstream.name]);
    const ahead = this.#pick(exclude, minHead ?? upstream.headNumber + 1n, true);
    if (ahead !== undefined || minHead === undefined || minHead <= this.#pool.highestSeen) return ahead;
    return this.#pick(exclude);
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
      const upstream = this.#pick(answeredNull, height, true) ?? this.#pick(NO_NODES, height, true);
      if (upstream === undefined) continue;
      const again = await this.#attempt(upstream, method, params, this.#timeLeft(method, deadline), caller).catch(() => undefined);
      if (again !== undefined && !isNullResult(again)) return again;
      answeredNull.add(upstream.name);
    }
    return reply;
  }

  #timeLeft(method: string, deadline: number): number {
    return Math.max(1, Math.min(this.#timeoutOf(method), deadline - performance.now()));
  }

  /** The method's own per-attempt timeout (methods.timeoutMs), if it has one. */
  #ownTimeout(method: string): number | undefined {
    return this.#timeouts.size === 0 ? undefined : this.#timeouts.get(method);
  }

  /** One attempt's timeout: the method's own, else requestTimeoutMs. */
  #timeoutOf(method: string): number {
    return this.#ownTimeout(method) ?? this.#settings.requestTimeoutMs;
  }

  /** A call's time with its retries: retry.deadlineMs, stretched to fit one attempt of a method with its own timeout. */
  #deadlineOf(method: string): number {
    const own = this.#ownTimeout(method);
    return own === undefined ? this.#settings.retry.deadlineMs : Math.max(own, this.#settings.retry.deadlineMs);
  }

  /**
   * A signed transaction (eth_sendRawTransaction and its Conditional and Sync forms) goes to each
   * node at most once. When a node timed out and the next one says the transaction is already there
   * ("already known"), or that its nonce is taken and it knows the transaction by its hash (the
   * first node passed it on, and it may already be mined), the send worked: the client gets the
   * hash, not an error for its own transaction. The Sync form answers with a receipt, not a hash,
   * so it gets the node's answer as it is. When no node answered, but one may have taken it (timed
   * out, socket closed), a node is asked for it by hash before the client is told anything
   * (#unansweredSend). The node picked for a client's first send is its writer node at once
   * (RecentWriters), and so is the node a send goes to after failing on the writer node: sends made
   * together, nonce after nonce, go to one node, also when they move off a node that failed.
   */
  async #sendSigned(method: string, params: unknown, caller: CallContext): Promise<UpstreamReply> {
    const raw = Array.isArray(params) ? params[0] : undefined;
    // Not /^0x([0-9a-fA-F]{2})+$/: its group, repeated once per byte, took 31 ms for a six-blob
    // transaction's 1.6 MB of hex, against 4 ms for a plain class and a length check.
    if (typeof raw !== 'string' || raw.length % 2 !== 0 || !/^0x[0-9a-fA-F]+$/.test(raw)) {
      throw new InvalidParamsError(`${method} expects one 0x-prefixed hex string of signed transaction bytes as its first parameter`);
    }
    const answersHash = method !== 'eth_sendRawTransactionSync';
    const { maxAttempts } = this.#settings.retry;
    const deadline = performance.now() + this.#deadlineOf(method);
    // Each node at most once: a node that timed out may still have taken the transaction.
    const tried = new Set<string>();
    let lastError: unknown;
    let mayHaveIt = false;
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      let upstream = this.#sendTarget(method, caller, tried);
      // Every node down for a moment: wait for one, as other calls do, rather than fail the send.
      if (upstream === undefined && tried.size === 0 && (await this.#pool.untilServing(Math.min(deadline, performance.now() + NODE_WAIT_MS)))) {
        upstream = this.#sendTarget(method, caller, tried);
      }
      const timeout = Math.min(this.#timeoutOf(method), deadline - performance.now());
      if (upstream === undefined || timeout <= 0) break;
      tried.add(upstream.name);
      try {
        const reply = await this.#attempt(upstream, method, params, timeout, caller);
        if (reply.error === undefined) {
          this.#writers.note(caller.sessionKey, upstream.name);
          return reply;
        }
        const hash = attempt > 0 && answersHash ? await this.#hashIfTaken(upstream, reply, raw, deadline, caller) : undefined;
        if (hash !== undefined) {
          this.#writers.note(caller.sessionKey, upstream.name);
          return resultReply(hash);
        }
        if (!isRetryableRpcError(reply.error)) return reply;
        lastError = reply;
      } catch (error) {
        if (!(error instanceof UpstreamFailure)) throw error;
        lastError = error;
        if (mayHaveReachedNode(error)) mayHaveIt = true;
      }
    }
    if (mayHaveIt && answersHash && !isReply(lastError)) return this.#unansweredSend(method, raw, lastError as UpstreamFailure, caller);
    return this.#giveUp(method, lastError);
  }

  /**
   * No node answered a signed transaction, but one may have taken it: every node timed out, say,
   * each with it in its pool. "Failed" would be wrong, and a wallet told so asks for a fresh nonce
   * and pays twice. So a node is asked for it by hash (any serving node: a node passes what it
   * takes on to its peers): the client gets the hash if one has it, else an error that says the
   * transaction may have been taken and names its hash.
   */
  async #unansweredSend(method: string, raw: string, failure: UpstreamFailure, caller: CallContext): Promise<UpstreamReply> {
    const hash = keccak256(raw as `0x${string}`);
    const upstream = this.#pick(NO_NODES);
    const found =
      upstream === undefined
        ? undefined
        : await this.#attempt(upstream, 'eth_getTransactionByHash', [hash], Math.min(this.#timeoutOf('eth_getTransactionByHash'), UNANSWERED_SEND_CHECK_MS), caller).catch(
            () => undefined,
          );
    if (found !== undefined && found.error === undefined && !isNullResult(found)) return resultReply(hash);
    throw new UpstreamUnavailableError(
      `${method}: no node answered (last error ${failure.code}: ${failure.message}), and a node may have taken it: look for transaction ${hash} (eth_getTransactionByHash) before sending it again`,
    );
  }

  /**
   * The transaction's hash when a node's error to it, sent again, means the node has that very
   * transaction; else undefined. The hash is worked out once, and only for such an error: a
   * six-blob transaction is 1.6 MB of hex.
   */
  async #hashIfTaken(upstream: Upstream, reply: UpstreamReply, raw: string, deadline: number, caller: CallContext): Promise<string | undefined> {
    const known = isAlreadyKnown(reply.error!);
    if (!known && !isNonceTaken(reply.error!)) return undefined;
    const hash = keccak256(raw as `0x${string}`);
    if (known) return hash;
    const found = await this.#attempt(upstream, 'eth_getTransactionByHash', [hash], this.#timeLeft('eth_getTransactionByHash', deadline), caller).catch(() => undefined);
    return found !== undefined && found.error === undefined && !isNullResult(found) ? hash : undefined;
  }

  /**
   * The node a send (signed or not) is tried on: the client's writer node unless the send failed
   * there already, else the pick of the nodes not tried. With no writer node yet, or the send just
   * failed on it, that node is the client's from now on, so the other sends of a burst, on their
   * first try or their retry, follow it there.
   */
  #sendTarget(method: string, caller: CallContext, tried: ReadonlySet<string>): Upstream | undefined {
    const writer = this.#writerNode(method, caller);
    const upstream = writer !== undefined && !tried.has(writer.name) ? writer : this.#pick(tried);
    if (upstream === undefined) return undefined;
    const recorded = this.#writers.nodeOf(caller.sessionKey);
    if (recorded === undefined || tried.has(recorded)) this.#writers.note(caller.sessionKey, upstream.name);
    return upstream;
  }

  /**
   * For a call that depends on a node's transaction pool, the node its client sent a transaction
   * through lately (recent-writers.ts), while it serves and has the block the call names. Sends and
   * reads of the pool itself (the pending nonce, eth_fillTransaction, any read of the "pending"
   * block: a balance, an eth_call or a gas estimate after the client's own transaction) follow it
   * wherever it is;
   * reads of what is mined (a receipt, a transaction by hash, a nonce at a block) only while it is
   * at the highest head: a node behind would show a mined transaction as pending.
   */
  #writerNode(method: string, caller: CallContext, minHead?: bigint, params?: unknown): Upstream | undefined {
    if (this.#writers.empty || !(isPoolDependent(method) || namesPendingBlock(method, params))) return undefined;
    const node = this.#servingWriter(caller);
    if (node === undefined) return undefined;
    if (minHead !== undefined && node.headNumber < minHead) return undefined;
    return readsPool(method, params) || node.headNumber >= highestHead(this.#pool.serving()) ? node : undefined;
  }

  /** The client's writer node, if it serves and is not `upstream`. */
  #writerBesides(upstream: Upstream, caller: CallContext): Upstream | undefined {
    const node = this.#servingWriter(caller);
    return node === upstream ? undefined : node;
  }

  /** The node the client sent a transaction through lately (recent-writers.ts), while it serves. */
  #servingWriter(caller: CallContext): Upstream | undefined {
    if (this.#writers.empty) return undefined;
    const name = this.#writers.nodeOf(caller.sessionKey);
    const node = name === undefined ? undefined : this.#pool.byName(name);
    return node !== undefined && this.#pool.serving().includes(node) ? node : undefined;
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
   * every node would send it, and close its socket on it.
   */
  #callerError(method: string, error: unknown): unknown {
    if (!isAnswerTooLarge(error)) return error;
    const limit = this.#settings.limits.maxAnswerBytes;
    return new LimitExceededError(`${method}: the node's answer is larger than this gateway's limit of ${limit} bytes (limits.maxAnswerBytes); ask for less, e.g. a narrower block range`);
  }

  /**
   * One attempt's outcome in the per-call metrics: its reply, or else its error. A call refused before
   * it left evmux (no socket, breaker open, the node's queue full, or timed out in it) is `rejected`:
   * counted as a transport error, a node that is only busy looked like a broken network.
   */
  #record(method: string, upstream: Upstream, started: number, reply: UpstreamReply | undefined, error: unknown): void {
    const outcome: RequestOutcome =
      reply !== undefined
        ? reply.error !== undefined
          ? 'rpc_error'
          : 'ok'
        : !(error instanceof UpstreamFailure)
          ? 'transport_error'
          : !mayHaveReachedNode(error)
            ? 'rejected'
            : error.code === 'EVMUX_TIMEOUT'
              ? 'timeout'
              : 'transport_error';
    this.#telemetry.requestFinished(method, upstream.name, outcome, (performance.now() - started) / 1000);
  }

  /**
   * Serving nodes first (usable primaries, else usable fallbacks); when none is usable, any healthy
   * one (a lagging node beats no answer). With `minHead`, nodes known to have that block are
   * preferred; `strict` requires it. For a read of "latest", of no block, or of a block within
   * health.maxLagBlocks of the highest head, nodes at that head are preferred. Nodes that far
   * behind serve, and one a block or two behind answered state from before a transaction its
   * client had just seen mined; web3.js, filling in a logs subscription's past with eth_getLogs up
   * to "latest", lost the logs of the blocks it lacked; and one still on a branch a reorg replaced
   * answered reads of those heights with the orphaned blocks. Older blocks are the same on every
   * node that has them.
   */
  #pick(exclude: ReadonlySet<string>, minHead?: bigint, strict = false): Upstream | undefined {
    const usable = this.#pool.serving();
    let candidates = usable.length > 0 ? usable : this.#pool.upstreams.filter((upstream) => upstream.healthy);
    const highest = highestHead(candidates);
    let block = minHead;
    if (block !== undefined && block > highest) {
      // Only a node that went away had it: none here has it yet.
      if (strict || block <= this.#pool.highestSeen) return undefined;
      // No node is known to have it (heads are a probe interval old at worst): the nodes at the
      // highest head are likeliest to by now.
      block = undefined;
    }
    // Reads of the head and of recent blocks go to the nodes at the highest head, older ones to any
    // node that has them.
    const needed = block === undefined || block >= highest - this.#recentBlocks ? highest : block;
    // Nodes in step, the usual case, need no new list.
    if (anyBelow(candidates, needed)) {
      const ahead = candidates.filter((upstream) => upstream.headNumber >= needed && !exclude.has(upstream.name));
      // Else, for a read of a block, a node that has it; nodes behind it would answer null, an
      // error, or logs without that block's.
      if (ahead.length > 0 || strict) candidates = ahead;
      else if (block !== undefined) candidates = candidates.filter((upstream) => upstream.headNumber >= block);
    }
    return this.#strategy.pick(candidates, exclude);
  }

  #giveUp(method: string, lastError: unknown): UpstreamReply {
    if (isReply(lastError)) return lastError;
    const detail = lastError instanceof UpstreamFailure ? `: last error ${lastError.code} (${lastError.message})` : ': no upstream available';
    throw new UpstreamUnavailableError(`${method} failed on every upstream tried${detail}`);
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

  resolve(reply: UpstreamReply): void {
    this.onOutcome(this, reply, undefined);
  }

  reject(error: unknown): void {
    this.onOutcome(this, undefined, error);
  }
}

/** A node's answer (an error it gave), as against a failure to get one. */
function isReply(value: unknown): value is UpstreamReply {
  return typeof value === 'object' && value !== null && 'tail' in value;
}

/** Whether a pool-dependent call's answer is the pool's (a send, the pending nonce), not what is mined. */
function readsPool(method: string, params: unknown): boolean {
  if (method === 'eth_getTransactionCount') return Array.isArray(params) && params[1] === 'pending';
  return method !== 'eth_getTransactionByHash' && method !== 'eth_getTransactionReceipt';
}

/**
 * A node that answered with block N has N: noted as its head, as an answer to eth_blockNumber is
 * (Upstream.noteReportedHead). N is the block of an eth_getBlockByNumber answer (a client handed N
 * as "latest" that reads block N next is sent to a node that has it), or the last block of an
 * eth_getLogs answer or a receipt (an indexer that reads a log's block and receipt by hash next is
 * sent to a node known to have them, or gets a second opinion from one when a node a block behind
 * answers null). Not of a read of "pending": that block is not on the chain yet.
 */
function noteAnsweredHead(upstream: Upstream, params: unknown, number: number | undefined): void {
  // The usual answer is the head already known: no bigint made for it, nor the params looked at.
  if (number === undefined || number <= Number(upstream.headNumber) || paramsText(params).includes('pending')) return;
  upstream.noteReportedHead(BigInt(number));
}

/** The params as the client wrote them, or (parsed) their first string, or JSON of their first object: enough to look for a "pending" tag. */
function paramsText(params: unknown): string {
  if (params instanceof ParamsJson) return params.text;
  const first: unknown = Array.isArray(params) ? params[0] : undefined;
  if (typeof first === 'string') return first;
  return first !== null && typeof first === 'object' ? JSON.stringify(first) : '';
}

function highestHead(upstreams: readonly Upstream[]): bigint {
  let highest = -1n;
  for (const upstream of upstreams) if (upstream.headNumber > highest) highest = upstream.headNumber;
  return highest;
}

function anyBelow(upstreams: readonly Upstream[], head: bigint): boolean {
  for (const upstream of upstreams) if (upstream.headNumber < head) return true;
  return false;
}

/** A write that failed after a node may have got it: not sent again, and the client is told why. */
function outcomeUnknown(method: string, error: UpstreamFailure): UpstreamUnavailableError {
  return new UpstreamUnavailableError(
    `${method}: ${error.message} (${error.code}); not sent to another node, since this one may have carried it out: check before sending it again`,
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
