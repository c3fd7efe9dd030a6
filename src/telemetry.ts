/**
 * What the core reports about itself. Core code calls these hooks; `metrics.ts` implements them
 * with prom-client, tests may implement them to observe. Keeping prom-client out of the core keeps
 * label handling (bounded cardinality) in one place.
 */
import type { FilterKind } from './router/filter-cursor.js';
import type { FilterMoveReason } from './router/filter-keeper.js';
import type { ChainLink } from './reorg-tally.js';
import type { SubscriptionKind } from './subs/subscription-params.js';

/** too_large = an answer over limits.maxAnswerBytes; rejected = never sent (request-outcome.ts) */
export type RequestOutcome = 'ok' | 'rpc_error' | 'timeout' | 'transport_error' | 'rejected' | 'too_large';
/** limit = a frame over the size limit (1009); protocol = a binary frame (1003) */
export type DisconnectReason = 'client' | 'slow_consumer' | 'shutdown' | 'limit' | 'protocol';

export interface Telemetry {
  clientConnected(): void;
  clientDisconnected(reason: DisconnectReason): void;
  clientRejected(reason: string): void;
  clientSubscriptionsChanged(kind: SubscriptionKind, delta: number): void;
  upstreamSubscriptionsChanged(upstream: string, kind: SubscriptionKind, delta: number): void;
  upstreamState(upstream: string, up: boolean): void;
  upstreamHead(upstream: string, head: bigint | null): void;
  requestFinished(method: string, upstream: string, outcome: RequestOutcome, seconds: number): void;
  clientError(code: number): void;
  failover(kind: SubscriptionKind): void;
  replayed(kind: SubscriptionKind, count: number): void;
  replayTruncated(kind: SubscriptionKind): void;
  /** a stream step (advance, catch-up, queued task) on this upstream failed; it is retried */
  streamStepFailed(upstream: string, kind: SubscriptionKind): void;
  /**
   * a delivered stream (newHeads or logs) went over a reorg: `orphaned` the delivered heads it took
   * off (newest first), `delivered` the branch it took instead; counted once however many streams
   * go over it (reorg-tally.ts)
   */
  reorg(orphaned: readonly ChainLink[], delivered: readonly ChainLink[]): void;
  /** a filter was made again on another node (its own, back without it: filter_lost); `replayed` items handed over from the gap */
  filterMoved(kind: FilterKind, reason: FilterMoveReason, replayed: number): void;
}

/** For code paths and tests that do not care. */
export const noTelemetry: Telemetry = {
  clientConnected() {},
  clientDisconnected() {},
  clientRejected() {},
  clientSubscriptionsChanged() {},
  upstreamSubscriptionsChanged() {},
  upstreamState() {},
  upstreamHead() {},
  requestFinished() {},
  clientError() {},
  failover() {},
  replayed() {},
  replayTruncated() {},
  streamStepFailed() {},
  reorg() {},
  filterMoved() {},
};
