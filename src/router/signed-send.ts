/**
 * Signed transactions (eth_sendRawTransaction and its Conditional and Sync forms): each node gets
 * one at most once (twice after its socket closed under it), and a client is never told a
 * transaction failed that a node may have taken.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config/schema.js';
import { InvalidParamsError, UpstreamUnavailableError } from '../jsonrpc/errors.js';
import { backoffDelay } from '../upstream/backoff.js';
import { isSocketGone, UpstreamFailure } from '../upstream/errors.js';
import { NODE_WAIT_MS, type UpstreamPool } from '../upstream/pool.js';
import { isNullResult, resultReply, type UpstreamReply } from '../upstream/reply.js';
import type { Upstream } from '../upstream/upstream.js';
import { giveUp, isReply } from './call-failures.js';
import type { CallContext } from './call-router.js';
import type { MethodTimeouts } from './method-timeouts.js';
import type { NodePicker } from './node-picker.js';
import { transactionHash } from './transaction-hash.js';
import { isAlreadyKnown, isNonceTaken, isRetryableRpcError, isSyncWaitOver, mayHaveReachedNode } from './retry-policy.js';
import type { WriterNodes } from './writer-nodes.js';

/** The most a signed transaction no node answered waits for a node to say whether it has it. */
const UNANSWERED_SEND_CHECK_MS = 2000;

/** How often the Sync form asks for the receipt of a transaction a node already had (#receiptBy). */
const RECEIPT_POLL_MS = 100;

/** Tries, beyond retry.maxAttempts, of nodes that refused a send before it left evmux (breaker, full queue). */
const MAX_REFUSED_TRIES = 10;

/** One try on one node, counted in the per-call metrics. */
export type Attempt = (upstream: Upstream, method: string, params: unknown, timeoutMs: number, caller: CallContext) => Promise<UpstreamReply>;

export class SignedSend {
  readonly #pool: UpstreamPool;
  readonly #maxAttempts: number;
  readonly #backoff: { baseMs: number; maxMs: number };
  readonly #timeouts: MethodTimeouts;
  readonly #writers: WriterNodes;
  readonly #picker: NodePicker;
  readonly #attempt: Attempt;

  constructor(pool: UpstreamPool, retry: Config['retry'], timeouts: MethodTimeouts, writers: WriterNodes, picker: NodePicker, attempt: Attempt) {
    this.#pool = pool;
    this.#maxAttempts = retry.maxAttempts;
    this.#backoff = { baseMs: retry.backoffBaseMs, maxMs: retry.backoffMaxMs };
    this.#timeouts = timeouts;
    this.#writers = writers;
    this.#picker = picker;
    this.#attempt = attempt;
  }

  /**
   * Send on one node after another until one takes it. When a node timed out and the next one says
   * the transaction is already there ("already known"), or that its nonce is taken and it knows the
   * transaction by its hash (the first node passed it on, and it may already be mined), the send
   * worked: the client gets the hash, not an error for its own transaction (the Sync form, which
   * answers with a receipt, that node's receipt once mined). A node whose socket closed under the
   * send gets it once more when it is back within NODE_WAIT_MS (a blip). When no node answered, but
   * one may have taken it (timed out, socket closed), a node is asked for it by hash before the
   * client is told anything (#unanswered). The node picked for a client's first send is its writer
   * node at once (writer-nodes.ts), and so is the node a send goes to after failing on the writer
   * node: sends made together, nonce after nonce, go to one node, also when they move off a node
   * that failed.
   */
  async send(method: string, params: unknown, caller: CallContext): Promise<UpstreamReply> {
    const raw = Array.isArray(params) ? params[0] : undefined;
    // Not /^0x([0-9a-fA-F]{2})+$/: its group, repeated once per byte, took 31 ms for a six-blob
    // transaction's 1.6 MB of hex, against 4 ms for a plain class and a length check.
    if (typeof raw !== 'string' || raw.length % 2 !== 0 || !/^0x[0-9a-fA-F]+$/.test(raw)) {
      throw new InvalidParamsError(`${method} expects one 0x-prefixed hex string of signed transaction bytes as its first parameter`);
    }
    const answersHash = method !== 'eth_sendRawTransactionSync';
    const deadline = performance.now() + this.#timeouts.deadlineOf(method);
    // Each node at most once: a node that timed out may still have taken the transaction.
    const tried = new Set<string>();
    let lastError: unknown;
    let mayHaveIt = false;
    let refused = 0;
    /** the send was made again on a node whose socket closed under it (once) */
    let again = false;
    // The client's node down for a moment: its next nonce is in that node's pool (WriterNodes.untilBack).
    await this.#writers.untilBack(caller, deadline);
    for (let attempt = 0; attempt < this.#maxAttempts; attempt++) {
      let upstream = this.#writers.sendTarget(caller, tried);
      // Every node down for a moment: wait for one, as other calls do, rather than fail the send.
      if (upstream === undefined && tried.size === 0 && (await this.#pool.untilServing(Math.min(deadline, performance.now() + NODE_WAIT_MS)))) {
        upstream = this.#writers.sendTarget(caller, tried);
      }
      const timeout = Math.min(this.#timeouts.timeoutOf(method), deadline - performance.now());
      if (upstream === undefined || timeout <= 0) break;
      tried.add(upstream.name);
      try {
        const reply = await this.#attempt(upstream, method, params, timeout, caller);
        if (reply.error === undefined) {
          this.#writers.note(caller, upstream.name);
          return reply;
        }
        const taken = attempt > 0 || again ? await this.#takenAnswer(upstream, reply, raw, answersHash, deadline, caller) : undefined;
        if (taken !== undefined) {
          this.#writers.note(caller, upstream.name);
          return taken;
        }
        if (!answersHash && isSyncWaitOver(reply.error)) {
          // Taken, not yet mined: the client's next transactions belong in this node's pool.
          this.#writers.note(caller, upstream.name);
          return reply;
        }
        if (!isRetryableRpcError(reply.error)) return reply;
        lastError = reply;
      } catch (error) {
        if (!(error instanceof UpstreamFailure)) throw error;
        lastError = error;
        const reached = mayHaveReachedNode(error);
        if (reached) mayHaveIt = true;
        // Its socket closed under the send (a blip): the node is back in milliseconds, and a second
        // try there says whether it has the transaction. Sent on to another node, the client's writer
        // node moved there, without the client's transactions before this one: its next send took
        // one of their nonces.
        if (isSocketGone(error) && !again && (await this.#pool.untilUsable(upstream, Math.min(deadline, performance.now() + NODE_WAIT_MS)))) {
          again = true;
          tried.delete(upstream.name);
          attempt--;
        } else if (!reached && refused < MAX_REFUSED_TRIES) {
          // Refused before it left evmux: the node never saw it, so it may have it again, after a
          // backoff. A half-open breaker lets one call through at a time: the sends of a burst
          // after a node's restart were all refused but the first, with the deadline unused.
          tried.delete(upstream.name);
          const delay = backoffDelay(refused++, this.#backoff);
          if (performance.now() + delay >= deadline) break;
          await sleep(delay);
          attempt--;
        }
      }
    }
    if (mayHaveIt && !isReply(lastError)) return this.#unanswered(method, raw, answersHash, lastError as UpstreamFailure, tried, deadline, caller);
    return giveUp(method, lastError);
  }

  /**
   * No node answered a signed transaction, but one may have taken it: every node timed out, say,
   * each with it in its pool. "Failed" would be wrong, and a wallet told so asks for a fresh nonce
   * and pays twice. So the nodes it went to are asked for it by hash, and a serving node (a node
   * passes what it takes on to its peers), each once it is usable: their sockets may have closed
   * under the send (a blip), and a node back 50 ms later with it in its pool was never asked. The
   * client gets the hash if one has it, else an error that says the transaction may have been
   * taken and names its hash.
   */
  async #unanswered(
    method: string,
    raw: string,
    answersHash: boolean,
    failure: UpstreamFailure,
    tried: ReadonlySet<string>,
    deadline: number,
    caller: CallContext,
  ): Promise<UpstreamReply> {
    const hash = transactionHash(raw as `0x${string}`);
    const until = performance.now() + UNANSWERED_SEND_CHECK_MS;
    const nodes = new Set<Upstream>();
    for (const name of tried) {
      const upstream = this.#pool.byName(name);
      if (upstream !== undefined) nodes.add(upstream);
    }
    const serving = this.#picker.pick(new Set());
    if (serving !== undefined) nodes.add(serving);
    // The hash, or for the Sync form the receipt once the node has mined it.
    const answerOf = async (upstream: Upstream): Promise<UpstreamReply | undefined> => {
      if (!(await this.#pool.untilUsable(upstream, until))) return undefined;
      if (!(await this.#holds(upstream, hash, Math.min(this.#timeouts.timeoutOf('eth_getTransactionByHash'), Math.max(1, until - performance.now())), caller))) return undefined;
      return answersHash ? resultReply(hash) : this.#receiptBy(upstream, hash, deadline, caller);
    };
    const answer = await firstOf([...nodes].map(answerOf));
    if (answer !== undefined) return answer;
    throw new UpstreamUnavailableError(
      `${method}: no node answered (last error ${failure.code}: ${failure.message}), and a node may have taken it: look for transaction ${hash} (eth_getTransactionByHash) before sending it again`,
    );
  }

  /**
   * When a node's error to the transaction, sent again, means the node has that very transaction,
   * what the client is answered: its hash, or for the Sync form its receipt once mined (the send
   * worked, and "nonce too low" for a transaction that was mined is wrong). Else undefined.
   */
  async #takenAnswer(upstream: Upstream, reply: UpstreamReply, raw: string, answersHash: boolean, deadline: number, caller: CallContext): Promise<UpstreamReply | undefined> {
    const hash = await this.#hashIfTaken(upstream, reply, raw, deadline, caller);
    if (hash === undefined) return undefined;
    return answersHash ? resultReply(hash) : this.#receiptBy(upstream, hash, deadline, caller);
  }

  /**
   * The transaction's hash when a node's error to it, sent again, means the node has that very
   * transaction; else undefined. The hash is worked out once, and only for such an error: a
   * six-blob transaction is 1.6 MB of hex.
   */
  async #hashIfTaken(upstream: Upstream, reply: UpstreamReply, raw: string, deadline: number, caller: CallContext): Promise<string | undefined> {
    const known = isAlreadyKnown(reply.error!);
    if (!known && !isNonceTaken(reply.error!)) return undefined;
    const hash = transactionHash(raw as `0x${string}`);
    if (known) return hash;
    return (await this.#holds(upstream, hash, this.#timeouts.timeLeft('eth_getTransactionByHash', deadline), caller)) ? hash : undefined;
  }

  /**
   * The Sync form's answer for a transaction the node has: its receipt, asked for every
   * RECEIPT_POLL_MS until the deadline, as the node itself waits for it to be mined; undefined
   * (the node's own error stands) when it is not mined by then.
   */
  async #receiptBy(upstream: Upstream, hash: string, deadline: number, caller: CallContext): Promise<UpstreamReply | undefined> {
    for (;;) {
      const timeout = this.#timeouts.timeLeft('eth_getTransactionReceipt', deadline);
      if (timeout <= 0) return undefined;
      const receipt = await this.#attempt(upstream, 'eth_getTransactionReceipt', [hash], timeout, caller).catch(() => undefined);
      if (receipt !== undefined && receipt.error === undefined && !isNullResult(receipt)) return receipt;
      if (performance.now() + RECEIPT_POLL_MS >= deadline) return undefined;
      await sleep(RECEIPT_POLL_MS);
    }
  }

  /** Whether `upstream` says it has the transaction `hash`; false when it cannot say. */
  async #holds(upstream: Upstream, hash: string, timeoutMs: number, caller: CallContext): Promise<boolean> {
    const found = await this.#attempt(upstream, 'eth_getTransactionByHash', [hash], timeoutMs, caller).catch(() => undefined);
    return found !== undefined && found.error === undefined && !isNullResult(found);
  }
}

/** The first of `answers` to settle with one, undefined once all settled without (none rejects). */
function firstOf<T>(answers: ReadonlyArray<Promise<T | undefined>>): Promise<T | undefined> {
  return new Promise((resolve) => {
    let left = answers.length;
    if (left === 0) resolve(undefined);
    for (const answer of answers) void answer.then((value) => (value !== undefined ? resolve(value) : --left === 0 && resolve(undefined)));
  });
}
