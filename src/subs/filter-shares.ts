/**
 * The distinct logs filters each client address holds, over all its connections, against
 * limits.maxLogFiltersPerIp. Without it one address (200 connections of 100 subscriptions each)
 * could take every filter a node allows (subscriptions.maxLogFiltersPerUpstream), and nobody else
 * could subscribe to a filter of their own. Filters are counted by fingerprint: one with other block
 * numbers shares its node's subscription, but evmux keeps its chain and logs apart (a topic).
 */
export class FilterShares {
  /** per address: filter fingerprint → its subscriptions holding it */
  readonly #byIp = new Map<string, Map<string, number>>();
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  /** Count one more subscription to `filter` from `ip`; false (nothing counted) when it would be a filter past the limit. */
  claim(ip: string, filter: string): boolean {
    let held = this.#byIp.get(ip);
    const count = held?.get(filter) ?? 0;
    if (count === 0 && (held?.size ?? 0) >= this.#max) return false;
    if (held === undefined) this.#byIp.set(ip, (held = new Map()));
    held.set(filter, count + 1);
    return true;
  }

  release(ip: string, filter: string): void {
    const held = this.#byIp.get(ip);
    const count = held?.get(filter);
    if (held === undefined || count === undefined) return;
    if (count > 1) held.set(filter, count - 1);
    else if (held.delete(filter) && held.size === 0) this.#byIp.delete(ip);
  }
}
