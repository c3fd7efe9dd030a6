/**
 * One live eth_subscribe on one upstream, shared by every topic that needs it (a newHeads stream
 * serves the newHeads topic and every logs topic of that node). It is re-established after the
 * node's subscription socket drops, and released a grace period after its last user leaves.
 */
import { performance } from 'node:perf_hooks';
import type { Telemetry } from '../telemetry.js';
import { backoffDelay } from '../upstream/backoff.js';
import { SubscribeRefused, type UpstreamSubscription } from '../upstream/stream-carrier.js';
import type { Upstream } from '../upstream/upstream.js';
import type { SubscriptionKind } from './subscription-params.js';
import type { WarningThrottle } from '../runtime/warning-throttle.js';

/** Kinds whose results are states, not events: the last one is the node's current state (UpstreamStream.state). */
const STATE_KINDS: ReadonlySet<SubscriptionKind> = new Set(['syncing']);

export interface StreamUser {
  onResult(result: unknown): void;
  /** the stream was lost and is live again: anything in between may be missing */
  onResumed(): void;
}

export interface StreamDeps {
  telemetry: Telemetry;
  warnings: WarningThrottle;
  graceMs: number;
  timeoutMs: number;
  /** called with the node's id when subscribed, undefined when gone, so the registry can route */
  onId(stream: UpstreamStream, id: string | undefined): void;
  /** called when the stream released itself after the grace period */
  onReleased(stream: UpstreamStream): void;
  /** called when the node answered eth_subscribe with an error: it will not serve this stream now */
  onRefused(stream: UpstreamStream, error: SubscribeRefused): void;
}

export class UpstreamStream {
  readonly upstream: Upstream;
  readonly key: string;
  readonly kind: SubscriptionKind;
  readonly #params: unknown[];
  readonly #deps: StreamDeps;
  readonly #users = new Set<StreamUser>();
  /** the node's subscription while live */
  #live: UpstreamSubscription | undefined;
  #subscribing: Promise<void> | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #graceTimer: NodeJS.Timeout | undefined;
  #attempt = 0;
  #lostOnce = false;
  #closed = false;
  #liveSince = 0;
  /** why the last subscribe failed, for the error a waiting client gets */
  #lastFailure: string | undefined;
  /** the node answered the last subscribe with an error */
  #refused = false;
  /** a stream of states: the last result of the node's current subscription */
  #state: unknown;
  /** its kind is one of STATE_KINDS (asked once, not on every notification) */
  readonly #keepsState: boolean;

  constructor(upstream: Upstream, key: string, kind: SubscriptionKind, params: unknown[], deps: StreamDeps) {
    this.upstream = upstream;
    this.key = key;
    this.kind = kind;
    this.#keepsState = STATE_KINDS.has(kind);
    this.#params = params;
    this.#deps = deps;
  }

  get live(): boolean {
    return this.#live !== undefined;
  }

  get users(): number {
    return this.#users.size;
  }

  /** When the current upstream subscription was made (performance.now()); 0 when not live. */
  get liveSince(): number {
    return this.#liveSince;
  }

  /**
   * A stream of states (syncing): the last result the node's current subscription sent, its state
   * now; undefined before the first, and once the subscription is gone.
   */
  get state(): unknown {
    return this.#state;
  }

  /** Released after its grace period (or shut down): a new user needs a new stream from the registry. */
  get closed(): boolean {
    return this.#closed;
  }

  addUser(user: StreamUser): void {
    if (this.#closed) throw new Error(`${this.upstream.name}: ${this.kind} stream already released`);
    clearTimeout(this.#graceTimer);
    this.#graceTimer = undefined;
    this.#users.add(user);
    this.#ensure();
  }

  removeUser(user: StreamUser): void {
    this.#users.delete(user);
    if (this.#users.size > 0 || this.#graceTimer !== undefined) return;
    // The node refused it: nothing to keep for clients coming back, and kept for the grace period,
    // refused filters counted against limits.maxLogFiltersPerUpstream.
    if (this.#refused && this.#live === undefined) {
      this.close();
      return;
    }
    this.#graceTimer = setTimeout(() => {
      this.#graceTimer = undefined;
      if (this.#users.size === 0) this.close();
    }, this.#deps.graceMs);
  }

  /** Resolves when the upstream subscription is live (make before break). Rejects if it cannot be made now. */
  async ready(): Promise<void> {
    if (this.#live !== undefined) return;
    this.#ensure();
    await this.#subscribing;
    if (this.#live === undefined) throw this.notLive();
  }

  /** What ready() rejects with: the subscription is not live, and why the last subscribe failed. */
  notLive(): Error {
    return new Error(`${this.upstream.name}: ${this.kind} subscription not live${this.#lastFailure === undefined ? '' : ` (${this.#lastFailure})`}`);
  }

  deliver(result: unknown): void {
    if (this.#keepsState) this.#state = result;
    for (const user of this.#users) user.onResult(result);
  }

  /**
   * The node's subscription is gone: its socket closed, or the node's subscriptions moved to
   * another of its sockets (it is dropped where it was, should that socket still be open).
   * Subscribe again when possible.
   */
  lost(): void {
    if (!this.#drop()) return;
    this.#lostOnce = true;
    this.#scheduleRetry();
  }

  /**
   * The node's subscription looks dead although its socket is not (no notifications while its
   * chain moves): drop it and subscribe afresh. Users hear onResumed once the new one is live.
   */
  restart(): void {
    if (this.#closed || !this.#drop()) return;
    this.#lostOnce = true;
    this.#ensure();
  }

  /** The node may be able to take subscriptions again. */
  retryNow(): void {
    if (this.#live === undefined && this.#users.size > 0 && this.#subscribing === undefined) this.#ensure();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#graceTimer);
    this.#drop();
    this.#deps.onReleased(this);
  }

  /** Give up the live subscription, unsubscribing where it lives (nothing to do once its socket closed); false when there was none. */
  #drop(): boolean {
    const live = this.#live;
    if (live === undefined) return false;
    this.#setLive(undefined);
    void this.upstream.unsubscribe(live, this.#deps.timeoutMs).catch(() => {});
    return true;
  }

  #ensure(): void {
    if (this.#closed || this.#live !== undefined || this.#subscribing !== undefined) return;
    this.#subscribing = this.#subscribe().finally(() => {
      this.#subscribing = undefined;
    });
  }

  async #subscribe(): Promise<void> {
    try {
      const live = await this.upstream.subscribe(this.#params, this.#deps.timeoutMs);
      if (this.#closed) {
        await this.upstream.unsubscribe(live, this.#deps.timeoutMs);
        return;
      }
      this.#attempt = 0;
      this.#lastFailure = undefined;
      this.#refused = false;
      this.#setLive(live);
      if (this.#lostOnce) for (const user of this.#users) user.onResumed();
    } catch (error) {
      this.#lastFailure = (error as Error).message;
      this.#deps.warnings.warn({ upstream: this.upstream.name, kind: this.kind, err: this.#lastFailure }, 'upstream subscribe failed');
      this.#refused = error instanceof SubscribeRefused;
      if (error instanceof SubscribeRefused) this.#deps.onRefused(this, error);
      this.#scheduleRetry();
    }
  }

  #scheduleRetry(): void {
    if (this.#closed || this.#retryTimer !== undefined || this.#users.size === 0) return;
    const delay = backoffDelay(this.#attempt++, { baseMs: 100, maxMs: 5000 });
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      // Its users left meanwhile (a refused subscribe's clients went to another node): a new one asks again.
      if (this.#users.size === 0) return;
      if (this.upstream.subscriptionsReady) this.#ensure();
      else this.#scheduleRetry();
    }, delay);
  }

  #setLive(live: UpstreamSubscription | undefined): void {
    if (live === this.#live) return;
    const had = this.#live !== undefined;
    this.#live = live;
    // What a subscription that is gone said is no state of the node's now.
    this.#state = undefined;
    this.#liveSince = live === undefined ? 0 : performance.now();
    this.#deps.onId(this, live?.id);
    if (had !== (live !== undefined)) this.#deps.telemetry.upstreamSubscriptionsChanged(this.upstream.name, this.kind, live === undefined ? -1 : 1);
  }
}
