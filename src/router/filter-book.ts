/**
 * The filters this evmux made (eth_newFilter, eth_newBlockFilter, eth_newPendingTransactionFilter):
 * what each was made with, the node holding it now, and what its client has been handed. With
 * that, a filter whose node goes away is made again elsewhere under the id its client knows.
 *
 * Bounded three ways. A filter not polled for IDLE_MS is forgotten, as geth forgets one after five
 * minutes (its `--rpc.filtertimeout`); its node's answers then pass through as before. Past
 * MAX_FILTERS, or MAX_PARAMS_CHARS of params over all filters (a filter of 1,000 addresses has
 * 44 KB of them), the one polled least lately is forgotten. It counts the filters of each client
 * address for limits.maxInstalledFiltersPerIp. The entries are kept in the order they
 * were last used, so both checks look at the front only.
 */
import type { Upstream } from '../upstream/upstream.js';
import type { FilterCursor, FilterKind } from './filter-cursor.js';

export const IDLE_MS = 5 * 60_000;
export const MAX_FILTERS = 50_000;
export const MAX_PARAMS_CHARS = 64 * 1024 * 1024;

export interface FilterRecord {
  readonly kind: FilterKind;
  /** the method it was made with, and its params as JSON (text takes a third of the memory), made again with them */
  readonly method: string;
  readonly paramsJson: string;
  /** the session that made it, whose node a new one goes to first */
  readonly sessionKey: string;
  /** the address it counts against (limits.maxInstalledFiltersPerIp) */
  readonly clientIp: string;
  /** the node holding it now, and the node's own id for it */
  upstream: Upstream;
  nodeId: string;
  readonly cursor: FilterCursor | undefined;
  /**
   * What a move made on another call than eth_getFilterChanges (eth_getFilterLogs) found the client
   * had missed: handed over with the next poll, ahead of what that poll brings.
   */
  owed: unknown[];
  lastUsed: number;
  /** the call on this filter in progress: polls of one filter run one at a time */
  turn: Promise<unknown>;
}

export class FilterBook {
  /** by the id the client holds, in lower case; least lately used first */
  readonly #records = new Map<string, FilterRecord>();
  /** filters kept per client address */
  readonly #perClient = new Map<string, number>();
  /** the length of every kept filter's paramsJson, summed */
  #paramsChars = 0;

  get size(): number {
    return this.#records.size;
  }

  /** Filters kept that `clientIp` made, those not polled for IDLE_MS by `now` aside. */
  countOf(clientIp: string, now = Date.now()): number {
    this.#expire(now);
    return this.#perClient.get(clientIp) ?? 0;
  }

  add(id: string, record: FilterRecord, now = Date.now()): void {
    this.#expire(now);
    this.#forget(id.toLowerCase());
    this.#records.set(id.toLowerCase(), record);
    this.#perClient.set(record.clientIp, (this.#perClient.get(record.clientIp) ?? 0) + 1);
    this.#paramsChars += record.paramsJson.length;
    for (const oldest of this.#records.keys()) {
      if (this.#records.size <= MAX_FILTERS && this.#paramsChars <= MAX_PARAMS_CHARS) break;
      this.#forget(oldest);
    }
  }

  /** The record of `id`, marked as used now; undefined when evmux did not make it or forgot it. */
  use(id: string, now = Date.now()): FilterRecord | undefined {
    this.#expire(now);
    const key = id.toLowerCase();
    const record = this.#records.get(key);
    if (record === undefined) return undefined;
    this.#records.delete(key);
    this.#records.set(key, record);
    record.lastUsed = now;
    return record;
  }

  /** Whether `record` is still the one kept for `id` (an uninstall may have come in between). */
  holds(id: string, record: FilterRecord): boolean {
    return this.#records.get(id.toLowerCase()) === record;
  }

  delete(id: string): void {
    this.#forget(id.toLowerCase());
  }

  #expire(now: number): void {
    for (const [key, record] of this.#records) {
      if (now - record.lastUsed < IDLE_MS) break;
      this.#forget(key);
    }
  }

  #forget(key: string): void {
    const record = this.#records.get(key);
    if (record === undefined) return;
    this.#records.delete(key);
    this.#paramsChars -= record.paramsJson.length;
    const count = (this.#perClient.get(record.clientIp) ?? 0) - 1;
    if (count > 0) this.#perClient.set(record.clientIp, count);
    else this.#perClient.delete(record.clientIp);
  }
}
