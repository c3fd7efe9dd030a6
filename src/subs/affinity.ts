/**
 * Which upstream a client session is pinned to: a consistent-hash ring over the configured nodes,
 * restricted to usable ones. A node that went away gets its keys back only after it has been usable
 * for the hold-down time, so a flapping node does not drag sessions back and forth.
 */
import type { Upstream } from '../upstream/upstream.js';
import type { UpstreamPool } from '../upstream/pool.js';
import { HashRing } from './hash-ring.js';

export class SessionAffinity {
  readonly #pool: UpstreamPool;
  readonly #ring = new HashRing();
  readonly #holdDownMs: number;
  readonly #hadOutage = new Set<Upstream>();
  readonly #wasUsable = new Set<Upstream>();

  constructor(pool: UpstreamPool, holdDownMs: number) {
    this.#pool = pool;
    this.#holdDownMs = holdDownMs;
    this.#ring.setNodes(pool.upstreams.map((upstream) => ({ name: upstream.name, weight: upstream.weight })));
    pool.on('changed', () => this.#noteOutages());
  }

  /** The upstream that owns `key` now, or undefined when none is usable. */
  owner(key: string): Upstream | undefined {
    const name =
      this.#ring.lookup(key, (candidate) => this.#eligible(candidate)) ??
      // Everyone usable is still in hold-down: better a fresh node than none.
      this.#ring.lookup(key, (candidate) => this.#usable(candidate));
    return name === undefined ? undefined : this.#pool.byName(name);
  }

  #usable(name: string): boolean {
    const upstream = this.#pool.byName(name);
    return upstream !== undefined && this.#pool.isUsable(upstream);
  }

  #eligible(name: string): boolean {
    const upstream = this.#pool.byName(name);
    if (upstream === undefined || !this.#pool.isUsable(upstream)) return false;
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
