/**
 * Requests per second per client (`limits.requestsPerSecondPerClient`): a token bucket for each
 * client key, the one that pins its subscriptions (`subscriptions.sessionKey`: its IP, or an API key
 * from the query, a header or the path). Each request takes a token, each element of a batch too;
 * a bucket refills at the rate up to the burst. Buckets that are full again are swept away, so a
 * client that left costs nothing.
 */
import { performance } from 'node:perf_hooks';

interface Bucket {
  tokens: number;
  /** when `tokens` was last worked out, ms */
  at: number;
}

const SWEEP_INTERVAL_MS = 10_000;

export class ClientRateLimit {
  readonly perSecond: number;
  readonly burst: number;
  readonly #perMs: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, Bucket>();
  readonly #sweeper: NodeJS.Timeout;

  /** `burst` 0: one second's worth, at least one. `now` is a clock in ms (tests pass their own). */
  constructor(perSecond: number, burst: number, now: () => number = () => performance.now()) {
    this.perSecond = perSecond;
    this.burst = burst > 0 ? burst : Math.max(1, Math.ceil(perSecond));
    this.#perMs = perSecond / 1000;
    this.#now = now;
    this.#sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS).unref();
  }

  /** Take one request's token for `client`; false when its bucket is empty. */
  take(client: string): boolean {
    const now = this.#now();
    const bucket = this.#buckets.get(client);
    if (bucket === undefined) {
      this.#buckets.set(client, { tokens: this.burst - 1, at: now });
      return true;
    }
    const tokens = Math.min(this.burst, bucket.tokens + (now - bucket.at) * this.#perMs);
    bucket.at = now;
    if (tokens < 1) {
      bucket.tokens = tokens;
      return false;
    }
    bucket.tokens = tokens - 1;
    return true;
  }

  /** Clients tracked now (buckets not yet full again, or not yet swept). */
  get clients(): number {
    return this.#buckets.size;
  }

  /** Drop the buckets that have refilled: their clients are as if never seen. */
  sweep(): void {
    const now = this.#now();
    for (const [client, bucket] of this.#buckets) {
      if (bucket.tokens + (now - bucket.at) * this.#perMs >= this.burst) this.#buckets.delete(client);
    }
  }

  close(): void {
    clearInterval(this.#sweeper);
  }
}
