/**
 * The calls stream work makes on one upstream: headers for anchors, replays and reorgs, and the
 * logs of blocks. After a failover every topic moved to a node catches up at once, and each asks
 * for the latest block, walks back the same parent links and fetches its logs. Sent as they came,
 * 2,000 logs topics overflowed the node's request queue: steps failed and were retried every
 * second, client calls to that node were refused meanwhile, and every failure was logged.
 *
 * So identical header requests share one call (by hash from a cache, since a block does not
 * change; `latest` while one is in flight), and at most `concurrency` calls are in flight: the
 * rest wait their turn here instead of failing, and the node's other slots stay free for clients
 * and health probes. Header calls go before the logs calls waiting: every stream's next step waits
 * on them (a moved newHeads group's catch-up, a walk back to a fork), and behind 2,800 logs
 * topics' replays a newHeads client saw no head for 12 s.
 *
 * Each call is counted in the per-call metrics as a client's is (evmux_requests_total): the node
 * serves it, and a provider bills it, all the same.
 */
import { performance } from 'node:perf_hooks';
import { failedOutcome } from '../request-outcome.js';
import { Slots } from '../runtime/slots.js';
import type { RequestOutcome, Telemetry } from '../telemetry.js';
import { NodeRpcError } from '../upstream/errors.js';
import { toTrackedHead, type TrackedHead } from '../upstream/head.js';
import type { Upstream } from '../upstream/upstream.js';
import type { HeadSource } from './chain-cursor.js';

/** Headers remembered by hash: a failover's walk back and a reorg's fork search find them here. */
export const HEADER_CACHE_SIZE = 512;

export class StreamCalls implements HeadSource<TrackedHead> {
  readonly #upstream: Upstream;
  readonly #slots: Slots;
  readonly #timeoutMs: number;
  readonly #telemetry: Telemetry;
  readonly #byHash = new Map<string, TrackedHead>();
  readonly #fetching = new Map<string, Promise<TrackedHead | null>>();

  constructor(upstream: Upstream, options: {
    /** calls in flight at most */
    concurrency: number;
    /** per call, counted from when it is sent */
    timeoutMs: number;
    /** where each call's outcome and latency go */
    telemetry: Telemetry;
  }) {
    this.#upstream = upstream;
    this.#slots = new Slots(options.concurrency, 'StreamCalls concurrency');
    this.#timeoutMs = options.timeoutMs;
    this.#telemetry = options.telemetry;
  }

  /** Calls waiting for their turn. */
  get waiting(): number {
    return this.#slots.waiting;
  }

  /** The node's current head, shaped like a newHeads notification; null if it has none. */
  latest(): Promise<TrackedHead | null> {
    return this.#shared('latest', () => this.#header('eth_getBlockByNumber', 'latest'));
  }

  known(hash: string): TrackedHead | undefined {
    return this.#byHash.get(hash.toLowerCase());
  }

  /** The header with this hash, shaped like a newHeads notification; null if the node lacks it. */
  byHash(hash: string): Promise<TrackedHead | null> {
    const key = hash.toLowerCase();
    const cached = this.known(key);
    if (cached !== undefined) return Promise.resolve(cached);
    return this.#shared(key, async () => {
      const head = await this.#header('eth_getBlockByHash', hash);
      if (head !== null) this.#remember(head);
      return head;
    });
  }

  /**
   * The header at this height on the node's chain now (a jump asks which delivered heads it still
   * has). Not kept by height, which a reorg changes; topics jumping together share the call.
   */
  byNumber(number: bigint): Promise<TrackedHead | null> {
    const ref = `0x${number.toString(16)}`;
    return this.#shared(ref, async () => {
      const head = await this.#header('eth_getBlockByNumber', ref);
      if (head !== null) this.#remember(head);
      return head;
    });
  }

  /** eth_getLogs with `query`, the node's answer as sent. */
  logs(query: Record<string, unknown>): Promise<Array<Record<string, unknown>>> {
    return this.#slots.run(() => this.#call<Array<Record<string, unknown>>>('eth_getLogs', [query]));
  }

  /** eth_syncing, the node's answer as sent: `false` when it is synced. */
  syncing(): Promise<unknown> {
    return this.#slots.run(() => this.#call<unknown>('eth_syncing', []));
  }

  /** Requests made together get one call; a failed one is not kept, so a retry asks again. */
  #shared(key: string, fetch: () => Promise<TrackedHead | null>): Promise<TrackedHead | null> {
    let pending = this.#fetching.get(key);
    if (pending === undefined) {
      pending = fetch().finally(() => this.#fetching.delete(key));
      this.#fetching.set(key, pending);
    }
    return pending;
  }

  async #header(method: 'eth_getBlockByHash' | 'eth_getBlockByNumber', ref: string): Promise<TrackedHead | null> {
    const block = await this.#slots.run(() => this.#call<Record<string, unknown> | null>(method, [ref, false]), true);
    if (block === null) return null;
    // Block bodies are not part of a newHeads notification.
    const { transactions: _transactions, uncles: _uncles, withdrawals: _withdrawals, size: _size, totalDifficulty: _td, ...header } = block;
    return toTrackedHead(header);
  }

  /** One call on the node, its slot held; its result, or the node's error as a NodeRpcError. */
  async #call<T>(method: string, params: unknown[]): Promise<T> {
    const started = performance.now();
    try {
      const result = await this.#upstream.call<T>(method, params, this.#timeoutMs);
      this.#finished(method, started, 'ok');
      return result;
    } catch (error) {
      this.#finished(method, started, error instanceof NodeRpcError ? 'rpc_error' : failedOutcome(error));
      throw error;
    }
  }

  #finished(method: string, started: number, outcome: RequestOutcome): void {
    this.#telemetry.requestFinished(method, this.#upstream.name, outcome, (performance.now() - started) / 1000);
  }

  #remember(head: TrackedHead): void {
    if (this.#byHash.size >= HEADER_CACHE_SIZE) this.#byHash.delete(this.#byHash.keys().next().value!);
    this.#byHash.set(head.hash, head);
  }
}
