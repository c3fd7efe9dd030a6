/** All upstream streams, keyed by (upstream, filter); routes node notifications to them by id. */
import type { Upstream } from '../upstream/upstream.js';
import type { UpstreamPool } from '../upstream/pool.js';
import type { SubscriptionKind } from './subscription-params.js';
import { EarlyNotifications } from './early-notifications.js';
import { UpstreamStream, type StreamDeps } from './upstream-stream.js';

type RegistryDeps = Pick<StreamDeps, 'telemetry' | 'warnings' | 'graceMs' | 'timeoutMs' | 'onRefused'>;

export class StreamRegistry {
  readonly #streams = new Map<Upstream, Map<string, UpstreamStream>>();
  readonly #byId = new Map<Upstream, Map<string, UpstreamStream>>();
  readonly #early = new Map<Upstream, EarlyNotifications>();
  /** logs streams per upstream, live or lingering */
  readonly #logs = new Map<Upstream, number>();
  readonly #deps: RegistryDeps;

  constructor(pool: UpstreamPool, deps: RegistryDeps) {
    this.#deps = deps;
    for (const upstream of pool.upstreams) {
      this.#streams.set(upstream, new Map());
      const byId = new Map<string, UpstreamStream>();
      const early = new EarlyNotifications();
      this.#byId.set(upstream, byId);
      this.#early.set(upstream, early);
      upstream.on('notification', (id, result) => {
        const stream = byId.get(id);
        if (stream !== undefined) stream.deliver(result);
        else early.hold(id, result);
      });
      upstream.on('subscriptionsLost', () => {
        for (const stream of this.#streams.get(upstream)?.values() ?? []) stream.lost();
      });
      upstream.on('state', () => {
        if (!upstream.subscriptionsReady) return;
        for (const stream of this.#streams.get(upstream)?.values() ?? []) stream.retryNow();
      });
    }
  }

  get(upstream: Upstream, key: string, kind: SubscriptionKind, params: unknown[]): UpstreamStream {
    const streams = this.#streams.get(upstream)!;
    let stream = streams.get(key);
    if (stream === undefined) {
      stream = new UpstreamStream(upstream, key, kind, params, {
        ...this.#deps,
        onId: (target, id) => this.#route(target, id),
        onReleased: (target) => {
          if (streams.get(target.key) !== target) return;
          streams.delete(target.key);
          if (kind === 'logs') this.#logs.set(upstream, (this.#logs.get(upstream) ?? 1) - 1);
        },
      });
      streams.set(key, stream);
      if (kind === 'logs') this.#logs.set(upstream, (this.#logs.get(upstream) ?? 0) + 1);
    }
    return stream;
  }

  /** Whether the upstream has a stream for `key` (live, being made, or in its grace period). */
  has(upstream: Upstream, key: string): boolean {
    return this.#streams.get(upstream)?.has(key) ?? false;
  }

  /** The upstream's logs streams: one per distinct filter, those in their grace period included. */
  logsStreams(upstream: Upstream): number {
    return this.#logs.get(upstream) ?? 0;
  }

  snapshot(upstream: Upstream): Array<{ kind: SubscriptionKind; key: string; users: number; live: boolean }> {
    return [...(this.#streams.get(upstream)?.values() ?? [])].map((stream) => ({
      kind: stream.kind,
      key: stream.key,
      users: stream.users,
      live: stream.live,
    }));
  }

  close(): void {
    for (const streams of this.#streams.values()) for (const stream of [...streams.values()]) stream.close();
  }

  #routes = new Map<UpstreamStream, string>();

  #route(stream: UpstreamStream, id: string | undefined): void {
    const ids = this.#byId.get(stream.upstream)!;
    const previous = this.#routes.get(stream);
    if (previous !== undefined) ids.delete(previous);
    this.#routes.delete(stream);
    if (id !== undefined) {
      ids.set(id, stream);
      this.#routes.set(stream, id);
      for (const result of this.#early.get(stream.upstream)!.take(id)) stream.deliver(result);
    }
  }
}
