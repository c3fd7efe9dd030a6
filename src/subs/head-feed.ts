/**
 * The newHeads stream of one upstream, parsed once per notification and fanned out to the topics
 * that follow that node's chain (its newHeads topic and every logs topic on it). It also watches
 * the stream for silence: a node whose subscription stops delivering while its chain moves on
 * (seen by probes or by other nodes) looks healthy to the pool, so the subscription layer has to
 * notice by itself.
 */
import { performance } from 'node:perf_hooks';
import type { WarningThrottle } from '../runtime/warning-throttle.js';
import { toTrackedHead, type TrackedHead } from '../upstream/head.js';
import type { Upstream } from '../upstream/upstream.js';
import type { StreamRegistry } from './stream-registry.js';
import type { StreamUser, UpstreamStream } from './upstream-stream.js';

export interface HeadListener {
  onHead(head: TrackedHead): void;
  onResumed(): void;
}

export class HeadFeed implements StreamUser {
  readonly upstream: Upstream;
  readonly #registry: StreamRegistry;
  readonly #listeners = new Set<HeadListener>();
  readonly #warnings: WarningThrottle;
  /** Taken from the registry while someone listens: a released stream is never reused. */
  #stream: UpstreamStream | undefined;
  #highest = -1n;
  #progressAt = 0;
  /** when the last new head arrived (performance.now()) */
  #lastHeadAt = 0;
  /** since when the node has been known to be past the stream's last head */
  #behindSince: number | undefined;

  constructor(upstream: Upstream, registry: StreamRegistry, warnings: WarningThrottle) {
    this.upstream = upstream;
    this.#registry = registry;
    this.#warnings = warnings;
  }

  /** When the stream last brought a head higher than any before (or was (re)made), performance.now(). */
  get progressAt(): number {
    return Math.max(this.#progressAt, this.#stream?.liveSince ?? 0);
  }

  add(listener: HeadListener): void {
    if (this.#listeners.size === 0) {
      this.#stream = this.#registry.get(this.upstream, 'newHeads', 'newHeads', ['newHeads']);
      this.#stream.addUser(this);
      this.#progressAt = performance.now();
      // A new subscription only brings heads after the node's current one: do not count the heads
      // it never could have sent as silence (a quiet chain right after a failover is not a stall).
      if (this.upstream.headNumber > this.#highest) this.#highest = this.upstream.headNumber;
    }
    this.#listeners.add(listener);
  }

  remove(listener: HeadListener): void {
    if (!this.#listeners.delete(listener)) return;
    if (this.#listeners.size > 0) return;
    // The stream lingers for the grace period; a later add() picks it up again if it is still there.
    this.#stream?.removeUser(this);
    this.#stream = undefined;
  }

  ready(): Promise<void> {
    return this.#stream?.ready() ?? Promise.reject(new Error(`${this.upstream.name}: no newHeads listeners`));
  }

  /**
   * How long the stream has brought no new head although `reference` (the node's own probed head,
   * or the best head of the pool) is past the last one it brought; 0 when it is fine. A stream that
   * cannot be made counts too while the node has a socket for it: a node that answers calls but
   * holds or fails every eth_subscribe (a provider's load balancer put the socket on such a backend)
   * is as silent as one whose subscription stopped. With no socket, the pool judges the node.
   * Meant to be sampled periodically: the first sample that sees the node ahead starts the clock.
   */
  silentFor(reference: bigint, now = performance.now()): number {
    const stream = this.#stream;
    if (stream === undefined || (!stream.live && !this.upstream.subscriptionsReady) || reference <= this.#highest) {
      this.#behindSince = undefined;
      return 0;
    }
    // Counted from when the node was first seen ahead, not from the last head: on a slow chain
    // the last head may be long ago although the stream is only a moment behind.
    this.#behindSince ??= now;
    return Math.max(0, now - Math.max(this.#behindSince, this.progressAt));
  }

  /** When the stream last brought a head higher than any before, performance.now() (0: never). */
  get lastHeadAt(): number {
    return this.#lastHeadAt;
  }

  /** Subscribe afresh on the node: its current subscription looks dead. */
  restart(): void {
    this.#stream?.restart();
  }

  onResult(result: unknown): void {
    let head: TrackedHead;
    try {
      head = toTrackedHead(result);
    } catch (error) {
      this.#warnings.warn({ upstream: this.upstream.name, err: (error as Error).message }, 'ignoring malformed newHeads notification');
      return;
    }
    if (!this.upstream.isPlausibleHead(head.number)) {
      this.#warnings.warn({ upstream: this.upstream.name, head: head.number.toString(), known: this.upstream.headNumber.toString() }, 'ignoring a newHeads notification far above the node\'s head');
      return;
    }
    if (head.number > this.#highest) {
      this.#highest = head.number;
      this.#progressAt = this.#lastHeadAt = performance.now();
    }
    // Duplicates and stale heads a node repeats must not pull its tracked height back (lag checks);
    // a rewind does, once a probe agrees.
    if (head.number >= this.upstream.headNumber) this.upstream.noteHead(head);
    else this.upstream.noteStreamWentBack();
    for (const listener of this.#listeners) listener.onHead(head);
  }

  onResumed(): void {
    for (const listener of this.#listeners) listener.onResumed();
  }
}
