/**
 * The node a client's calls that depend on a transaction pool go to: the one it sent a transaction
 * through lately (recent-writers.ts), while that node serves. Its sends follow it there, and so do
 * its reads of the pool and of what it just had mined.
 */
import { performance } from 'node:perf_hooks';
import { blockTag } from '../jsonrpc/block-ref.js';
import { NODE_WAIT_MS, type UpstreamPool } from '../upstream/pool.js';
import type { Upstream } from '../upstream/upstream.js';
import { namesPendingBlock } from './block-requirement.js';
import type { CallContext } from './call-router.js';
import { highestHead, type NodePicker } from './node-picker.js';
import { isPoolDependent, RecentWriters } from './recent-writers.js';

export class WriterNodes {
  readonly #pool: UpstreamPool;
  readonly #picker: NodePicker;
  readonly #writers = new RecentWriters();

  constructor(pool: UpstreamPool, picker: NodePicker) {
    this.#pool = pool;
    this.#picker = picker;
  }

  /** `node` took a send of the client's: its writer node from now on. */
  note(caller: CallContext, node: string): void {
    this.#writers.note(caller.sessionKey, node);
  }

  /**
   * For a call that depends on a node's transaction pool, the client's writer node, while it serves
   * and has the block the call names. Sends and reads of the pool itself (the pending nonce,
   * eth_fillTransaction, any read of the "pending" block: a balance, an eth_call or a gas estimate
   * after the client's own transaction) follow it wherever it is; reads of what is mined (a
   * receipt, a transaction by hash, a nonce at a block) only while it is at the highest head: a
   * node behind would show a mined transaction as pending. `params` as parsed.
   */
  forCall(method: string, caller: CallContext, minHead?: bigint, params?: unknown): Upstream | undefined {
    if (this.#writers.empty || !followsWriter(method, params)) return undefined;
    const node = this.#serving(caller);
    if (node === undefined) return undefined;
    if (minHead !== undefined && node.headNumber < minHead) return undefined;
    return readsPool(method, params) || node.headNumber >= highestHead(this.#pool.serving()) ? node : undefined;
  }

  /**
   * While the client's writer node is down since a moment ago (its sockets closed in a blip, and
   * come back in milliseconds): a wait until it is usable again, at most NODE_WAIT_MS after it went
   * down and no later than `until`. Calls that follow the writer node wait for it: sent elsewhere,
   * a wallet's pending nonce came from a node without its last transaction, and its next send took
   * the same nonce and moved the writer node there for good. Undefined when there is nothing to
   * wait for (the node serves, is down longer, or lags).
   */
  untilBack(caller: CallContext, until: number): Promise<boolean> | undefined {
    if (this.#writers.empty) return undefined;
    return this.#untilBack(caller, until);
  }

  /** Some client has a writer node: calls may follow one. */
  get active(): boolean {
    return !this.#writers.empty;
  }

  /** untilBack, for a call that follows the writer node (as forCall's do). */
  untilBackFor(method: string, caller: CallContext, params: unknown, until: number): Promise<boolean> | undefined {
    if (this.#writers.empty || !followsWriter(method, params)) return undefined;
    return this.#untilBack(caller, until);
  }

  #untilBack(caller: CallContext, until: number): Promise<boolean> | undefined {
    const name = this.#writers.nodeOf(caller.sessionKey);
    const node = name === undefined ? undefined : this.#pool.byName(name);
    if (node === undefined || node.healthy) return undefined;
    const away = this.#pool.awayFor(node);
    if (away === undefined || away >= NODE_WAIT_MS) return undefined;
    return this.#pool.untilUsable(node, Math.min(until, performance.now() + NODE_WAIT_MS - away));
  }

  /** The client's writer node, if it serves and is not `upstream`. */
  besides(upstream: Upstream, caller: CallContext): Upstream | undefined {
    const node = this.#serving(caller);
    return node === upstream ? undefined : node;
  }

  /**
   * The node a send (signed or not) is tried on: the client's writer node unless the send failed
   * there already, else the pick of the nodes not tried. With no writer node yet, the writer node
   * away, or the send just failed on it, that node is the client's from now on, so the other sends of a burst, on their
   * first try or their retry, follow it there.
   */
  sendTarget(caller: CallContext, tried: ReadonlySet<string>): Upstream | undefined {
    const writer = this.#serving(caller);
    const upstream = writer !== undefined && !tried.has(writer.name) ? writer : this.#picker.pick(tried);
    if (upstream === undefined) return undefined;
    const recorded = this.#writers.nodeOf(caller.sessionKey);
    // Its writer node away (longer than untilBack waits) is as good as failed: picked one by one,
    // the sends of a burst were spread over the nodes left, each with a nonce gap.
    if (recorded === undefined || writer === undefined || tried.has(recorded)) this.#writers.note(caller.sessionKey, upstream.name);
    return upstream;
  }

  /** The node the client sent a transaction through lately, while it serves. */
  #serving(caller: CallContext): Upstream | undefined {
    if (this.#writers.empty) return undefined;
    const name = this.#writers.nodeOf(caller.sessionKey);
    const node = name === undefined ? undefined : this.#pool.byName(name);
    return node !== undefined && this.#pool.serving().includes(node) ? node : undefined;
  }
}

/** Whether a pool-dependent call's answer is the pool's (a send, the pending nonce), not what is mined. */
function readsPool(method: string, params: unknown): boolean {
  if (method === 'eth_getTransactionCount') return Array.isArray(params) && blockTag(params[1]) === 'pending';
  return method !== 'eth_getTransactionByHash' && method !== 'eth_getTransactionReceipt';
}

/** Whether a call (its params as parsed) follows the client's writer node: it depends on a node's pool, or names the pending block. */
function followsWriter(method: string, params: unknown): boolean {
  return isPoolDependent(method) || namesPendingBlock(method, params);
}
