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
 *
 * Each node filter belongs to one kept filter. A node that counts its ids from 1 again after a
 * restart (Nethermind does; geth and anvil draw random ones) can give a new filter the id of one
 * kept here: the kept one is then lost on that node (`lost`: its next poll makes it again), and
 * if the new filter's client id would be one kept already (its filter moved off that node), the
 * new filter gets an alias instead (filter-id.ts). Otherwise one client would get another's filter.
 */
import { performance } from 'node:perf_hooks';
import type { Upstream } from '../upstream/upstream.js';
import type { FilterCursor, FilterKind } from './filter-cursor.js';
import { aliasFilterId, encodeFilterId } from './filter-id.js';

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
  /** the address it counts against (limits.maxInstalledFiltersPerIp; an IPv6 one by its prefix, address-block.ts) */
  readonly clientIp: string;
  /** the node holding it now, and the node's own id for it (changed with moved()) */
  upstream: Upstream;
  nodeId: string;
  /** its node gave its id to another filter: the node lost it (a restart), and it must be made again */
  lost: boolean;
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
  /** by node and node id: which kept filter holds each node filter */
  readonly #byNodeFilter = new Map<string, FilterRecord>();

  get size(): number {
    return this.#records.size;
  }

  /** Filters kept that `clientIp` made, those not polled for IDLE_MS by `now` aside. */
  countOf(clientIp: string, now = performance.now()): number {
    this.expire(now);
    return this.#perClient.get(clientIp) ?? 0;
  }

  /**
   * The id a new filter of `nodeId` on the upstream at `upstreamIndex` is given: the two encoded,
   * or an alias when a kept filter holds that id already.
   */
  idFor(upstreamIndex: number, nodeId: string, now = performance.now()): string {
    this.expire(now);
    let id = encodeFilterId(upstreamIndex, nodeId);
    for (let n = 1; this.#records.has(id.toLowerCase()); n++) id = aliasFilterId(upstreamIndex, nodeId, n);
    return id;
  }

  add(id: string, record: FilterRecord, now = performance.now()): void {
    this.expire(now);
    this.#forget(id.toLowerCase());
    this.#records.set(id.toLowerCase(), record);
    this.#place(record);
    this.#perClient.set(record.clientIp, (this.#perClient.get(record.clientIp) ?? 0) + 1);
    this.#paramsChars += record.paramsJson.length;
    for (const oldest of this.#records.keys()) {
      if (this.#records.size <= MAX_FILTERS && this.#paramsChars <= MAX_PARAMS_CHARS) break;
      this.#forget(oldest);
    }
  }

  /** The record of `id`, marked as used now; undefined when evmux did not make it or forgot it. */
  use(id: string, now = performance.now()): FilterRecord | undefined {
    this.expire(now);
    const key = id.toLowerCase();
    const record = this.#records.get(key);
    if (record === undefined) return undefined;
    this.#records.delete(key);
    this.#records.set(key, record);
    record.lastUsed = now;
    return record;
  }

  /** `record`, kept as `id` (or uninstalled meanwhile), was made again on `upstream`, which calls it `nodeId`. */
  moved(id: string, record: FilterRecord, upstream: Upstream, nodeId: string): void {
    this.#unplace(record);
    record.upstream = upstream;
    record.nodeId = nodeId;
    record.lost = false;
    if (this.holds(id, record)) this.#place(record);
  }

  /** Whether a kept filter is the one `upstream` calls `nodeId` now. */
  holdsNodeFilter(upstream: Upstream, nodeId: string): boolean {
    return this.#byNodeFilter.has(nodeFilterKey(upstream, nodeId));
  }

  /** Whether `record` is still the one kept for `id` (an uninstall may have come in between). */
  holds(id: string, record: FilterRecord): boolean {
    return this.#records.get(id.toLowerCase()) === record;
  }

  delete(id: string): void {
    this.#forget(id.toLowerCase());
  }

  /** Forget the filters not polled for IDLE_MS by `now`. */
  expire(now = performance.now()): void {
    for (const [key, record] of this.#records) {
      if (now - record.lastUsed < IDLE_MS) break;
      this.#forget(key);
    }
  }

  /** The node filter is `record`'s now: a kept filter its node called by the same id lost it there. */
  #place(record: FilterRecord): void {
    const key = nodeFilterKey(record.upstream, record.nodeId);
    const before = this.#byNodeFilter.get(key);
    if (before !== undefined && before !== record) before.lost = true;
    this.#byNodeFilter.set(key, record);
  }

  #unplace(record: FilterRecord): void {
    const key = nodeFilterKey(record.upstream, record.nodeId);
    if (this.#byNodeFilter.get(key) === record) this.#byNodeFilter.delete(key);
  }

  #forget(key: string): void {
    const record = this.#records.get(key);
    if (record === undefined) return;
    this.#records.delete(key);
    this.#unplace(record);
    this.#paramsChars -= record.paramsJson.length;
    const count = (this.#perClient.get(record.clientIp) ?? 0) - 1;
    if (count > 0) this.#perClient.set(record.clientIp, count);
    else this.#perClient.delete(record.clientIp);
  }
}

function nodeFilterKey(upstream: Upstream, nodeId: string): string {
  return `${upstream.name}/${nodeId.toLowerCase()}`;
}
