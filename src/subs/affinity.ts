/**
 * Which upstream a client session is pinned to: a consistent-hash ring over the configured nodes,
 * restricted to usable ones. A node that went away gets its keys back only after it has been usable
 * for the hold-down time, so a flapping node does not drag sessions back and forth. The subscription
 * layer can also mark a node whose streams misbehave while the pool still finds it fine (a newHeads
 * subscription gone silent): it owns no keys until the mark is cleared and hold-down has passed.
 * A fallback node owns keys only while no primary is eligible for them: a primary that comes back
 * takes its sessions back from the fallback after hold-down, as from any other node. A node that
 * refused a subscription (answered eth_subscribe with an error) owns no keys for that filter for a
 * while (REFUSAL_MS): its subscriptions go to the next node on the ring, the rest stay. Refusals
 * are per filter, not per kind: a node may refuse one filter (too many addresses, a flag it does not
 * take) and serve the others, and one client's odd filter must not send everyone's elsewhere. A node
 * whose stream of a filter keeps failing the calls it needs is passed over for that filter as long,
 * but only while another node serves it.
 */
import { performance } from 'node:perf_hooks';
import type { Upstream } from '../upstream/upstream.js';
import type { UpstreamPool } from '../upstream/pool.js';
import { HashRing } from './hash-ring.js';
import type { SubscriptionKind, SubscriptionSpec } from './subscription-params.js';

/** How long a node that refused a subscription is passed over for it; then it is asked again. */
export const REFUSAL_MS = 60_000;

/**
 * Filters a node's refusals are kept for at most; past them the node is passed over for the whole
 * kind (a node that refuses that many filters refuses them all: a cap), so that one client sending
 * distinct filters that nodes refuse cannot grow this without bound.
 */
export const MAX_REFUSED_FILTERS = 256;

/**
 * What a refusal covers: one filter (the node's subscription, its streamKey: every block range of
 * that filter rides on it), or every filter of a kind.
 */
export type RefusalScope = { streamKey: string } | { kind: SubscriptionKind };

/** The part of a subscription's spec refusals are checked against. */
export type RefusableSpec = Pick<SubscriptionSpec, 'kind' | 'streamKey'>;

interface Refusal {
  kind: SubscriptionKind;
  /** why the node would not make it: what a client refused by every node is told */
  reason: Error;
  /** performance.now() */
  until: number;
}

const scopeKey = (scope: RefusalScope): string => ('streamKey' in scope ? scope.streamKey : `*${scope.kind}`);

export class SessionAffinity {
  readonly #pool: UpstreamPool;
  readonly #ring = new HashRing();
  readonly #holdDownMs: number;
  readonly #hadOutage = new Set<Upstream>();
  readonly #wasUsable = new Set<Upstream>();
  readonly #faulty = new Set<Upstream>();
  /** when a fault mark was cleared, for hold-down */
  readonly #clearedAt = new Map<Upstream, number>();
  /** per node, the filters (by streamKey) and whole kinds (`*kind`) it refused, why, and until when */
  readonly #refusals = new Map<Upstream, Map<string, Refusal>>();
  /** per node, the filters (by streamKey) and whole kinds (`*kind`) whose streams failed there, until when (performance.now()) */
  readonly #failing = new Map<Upstream, Map<string, number>>();
  /**
   * counts every refusal and failing stream marked or expired: what state() says of them (not the
   * filters, which may be 45 KB each)
   */
  #marksVersion = 0;

  constructor(pool: UpstreamPool, holdDownMs: number) {
    this.#pool = pool;
    this.#holdDownMs = holdDownMs;
    this.#ring.setNodes(pool.upstreams.map((upstream) => ({ name: upstream.name, weight: upstream.weight })));
    pool.on('changed', () => this.#noteOutages());
    // The pool may be running already: what is usable now counts as having been up.
    this.#noteOutages();
  }

  /**
   * The upstream that owns `key` now, or undefined when none is usable; with `spec`, among the
   * nodes that have not refused that subscription lately, those whose stream of it did not fail
   * lately first.
   */
  owner(key: string, spec?: RefusableSpec): Upstream | undefined {
    const serves = (candidate: string): boolean => spec === undefined || !this.refuses(this.#pool.byName(candidate)!, spec);
    const fails = (candidate: string): boolean => spec !== undefined && this.failsStream(this.#pool.byName(candidate)!, spec);
    // A node failing the stream is passed over while another node serves it; else it is still the owner.
    const name = this.#ownerName(key, (candidate) => serves(candidate) && !fails(candidate)) ?? this.#ownerName(key, serves);
    return name === undefined ? undefined : this.#pool.byName(name);
  }

  /** owner()'s lookup among the nodes `serves` takes. */
  #ownerName(key: string, serves: (name: string) => boolean): string | undefined {
    return (
      // Primaries first; fallbacks (role) only while no primary can take the key.
      this.#ring.lookup(key, (candidate) => this.#eligible(candidate) && serves(candidate) && this.#pool.byName(candidate)!.role === 'primary') ??
      this.#ring.lookup(key, (candidate) => this.#eligible(candidate) && serves(candidate)) ??
      // Everyone usable is still in hold-down (all nodes were down): better a fresh node than none,
      // the one usable longest. Each node back in turn taking its keys at once made sessions move
      // three times instead of once: to it, back to the first node when that one's hold-down ended,
      // and to it again when its own did. A primary first: a fallback back a few ms sooner kept
      // every session for the primary's whole hold-down.
      this.#longestUsable((candidate) => this.#fit(candidate, serves) && this.#pool.byName(candidate)!.role === 'primary') ??
      this.#longestUsable((candidate) => this.#fit(candidate, serves)) ??
      // and a node with a suspect stream is still better than no node at all.
      this.#ring.lookup(key, (candidate) => this.#usable(candidate) && serves(candidate))
    );
  }

  /** The node answered eth_subscribe with an error: pass it over for what `scope` covers for REFUSAL_MS. */
  refused(upstream: Upstream, scope: RefusalScope, kind: SubscriptionKind, reason: Error, now = performance.now()): void {
    let refusals = this.#refusals.get(upstream);
    if (refusals === undefined) this.#refusals.set(upstream, (refusals = new Map()));
    this.#forgetRefusals(upstream, now);
    const whole = refusals.size >= MAX_REFUSED_FILTERS && 'streamKey' in scope;
    if (whole) for (const [key, refusal] of refusals) if (refusal.kind === kind) refusals.delete(key);
    refusals.set(whole ? scopeKey({ kind }) : scopeKey(scope), { kind, reason, until: now + REFUSAL_MS });
    this.#marksVersion++;
  }

  /** The kinds of the subscriptions the node refused less than REFUSAL_MS ago. */
  refusedKinds(upstream: Upstream, now = performance.now()): SubscriptionKind[] {
    this.#forgetRefusals(upstream, now);
    return [...new Set([...(this.#refusals.get(upstream)?.values() ?? [])].map((refusal) => refusal.kind))];
  }

  /** Whether the node refused this subscription, or every one of its kind, less than REFUSAL_MS ago. */
  refuses(upstream: Upstream, spec: RefusableSpec, now = performance.now()): boolean {
    const refusals = this.#refusals.get(upstream);
    if (refusals === undefined || refusals.size === 0) return false;
    this.#forgetRefusals(upstream, now);
    return refusals.has(spec.streamKey) || refusals.has(`*${spec.kind}`);
  }

  /**
   * The latest refusal of this subscription by a usable node, while one lasts. When owner() finds
   * no node for it although some are usable, every one of them refused it: a client asking then is
   * told why, as the client whose subscribe they refused was, rather than that no node is there.
   */
  refusal(spec: RefusableSpec, now = performance.now()): { upstream: Upstream; reason: Error } | undefined {
    let latest: (Refusal & { upstream: Upstream }) | undefined;
    for (const upstream of this.#pool.upstreams) {
      if (!this.#pool.isUsable(upstream)) continue;
      this.#forgetRefusals(upstream, now);
      const refusals = this.#refusals.get(upstream);
      const refusal = refusals?.get(spec.streamKey) ?? refusals?.get(scopeKey({ kind: spec.kind }));
      if (refusal !== undefined && (latest === undefined || refusal.until > latest.until)) latest = { ...refusal, upstream };
    }
    return latest;
  }

  /**
   * The node's stream of this filter failed the calls it needs step after step (a provider's rate
   * limit on eth_getLogs or eth_getBlockByNumber, a backend that holds them) while the node answers
   * its probes: other nodes own its keys for that filter for REFUSAL_MS, while one serves it. Unlike
   * a refusal, it still owns them when none does: a stream that may get there is better than none.
   */
  streamFailing(upstream: Upstream, spec: RefusableSpec, now = performance.now()): void {
    let failing = this.#failing.get(upstream);
    if (failing === undefined) this.#failing.set(upstream, (failing = new Map()));
    this.#forgetFailing(upstream, now);
    // Bounded as refusals are: a node failing the streams of that many filters fails them all.
    const scope = failing.size >= MAX_REFUSED_FILTERS ? { kind: spec.kind } : { streamKey: spec.streamKey };
    failing.set(scopeKey(scope), now + REFUSAL_MS);
    this.#marksVersion++;
  }

  /** Whether the node's stream of this filter, or of every one of its kind, failed less than REFUSAL_MS ago. */
  failsStream(upstream: Upstream, spec: RefusableSpec, now = performance.now()): boolean {
    const failing = this.#failing.get(upstream);
    if (failing === undefined || failing.size === 0) return false;
    this.#forgetFailing(upstream, now);
    return failing.has(spec.streamKey) || failing.has(scopeKey({ kind: spec.kind }));
  }

  #forgetFailing(upstream: Upstream, now: number): void {
    const failing = this.#failing.get(upstream);
    if (failing === undefined) return;
    for (const [key, until] of failing) {
      if (until > now) continue;
      failing.delete(key);
      this.#marksVersion++;
    }
  }

  #forgetRefusals(upstream: Upstream, now: number): void {
    const refusals = this.#refusals.get(upstream);
    if (refusals === undefined) return;
    for (const [key, refusal] of refusals) {
      if (refusal.until > now) continue;
      refusals.delete(key);
      this.#marksVersion++;
    }
  }

  /**
   * Everything owner() reads besides the key: for each node, whether each of its lookups would take
   * it, what it refuses, and which streams failed on it. Every key keeps its owner while this stays the same.
   */
  state(now = performance.now()): string {
    let state = '';
    for (const upstream of this.#pool.upstreams) {
      const usable = this.#pool.isUsable(upstream);
      state += `${this.#eligible(upstream.name) ? 1 : 0}${usable && !this.#faulty.has(upstream) ? 1 : 0}${usable ? 1 : 0}`;
      this.#forgetRefusals(upstream, now);
      this.#forgetFailing(upstream, now);
    }
    return `${state}-${this.#marksVersion}`;
  }

  /** Mark (or clear) a node whose subscription streams misbehave although the pool finds it usable. */
  setFaulty(upstream: Upstream, faulty: boolean): void {
    if (faulty) {
      this.#faulty.add(upstream);
      this.#clearedAt.delete(upstream);
    } else if (this.#faulty.delete(upstream)) {
      this.#clearedAt.set(upstream, performance.now());
    }
  }

  /** Takes what `serves` says it serves, and its streams are not suspect. */
  #fit(name: string, serves: (name: string) => boolean): boolean {
    return serves(name) && !this.#faulty.has(this.#pool.byName(name)!);
  }

  /** Of the usable nodes `accept` takes, the one usable since the earliest. */
  #longestUsable(accept: (name: string) => boolean): string | undefined {
    let longest: string | undefined;
    let since = Infinity;
    for (const upstream of this.#pool.upstreams) {
      const usableSince = this.#pool.usableSince(upstream);
      if (usableSince !== undefined && usableSince < since && accept(upstream.name)) {
        longest = upstream.name;
        since = usableSince;
      }
    }
    return longest;
  }

  #usable(name: string): boolean {
    const upstream = this.#pool.byName(name);
    return upstream !== undefined && this.#pool.isUsable(upstream);
  }

  #eligible(name: string): boolean {
    const upstream = this.#pool.byName(name);
    if (upstream === undefined || !this.#pool.isUsable(upstream) || this.#faulty.has(upstream)) return false;
    const clearedAt = this.#clearedAt.get(upstream);
    if (clearedAt !== undefined) {
      if (performance.now() - clearedAt < this.#holdDownMs) return false;
      this.#clearedAt.delete(upstream);
    }
    return !this.#hadOutage.has(upstream) || this.#pool.usableFor(upstream, this.#holdDownMs);
  }

  #noteOutages(): void {
    for (const upstream of this.#pool.upstreams) {
      const usable = this.#pool.isUsable(upstream);
      if (usable) this.#wasUsable.add(upstream);
      else if (this.#wasUsable.has(upstream)) this.#hadOutage.add(upstream);
    }
  }
}
