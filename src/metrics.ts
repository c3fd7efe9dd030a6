/**
 * Every Prometheus metric evmux exports, and the Telemetry implementation that feeds them. Labels
 * stay bounded: method names outside the known list become "other", upstream names come from the
 * config, kinds from a fixed set.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { CallStats } from './call-stats.js';
import { sampleLoopDelay } from './loop-delay-metric.js';
import { canonicalMethod } from './jsonrpc/method-names.js';
import type { FilterKind } from './router/filter-cursor.js';
import type { FilterMoveReason } from './router/filter-keeper.js';
import { ReorgTally, type ChainLink } from './reorg-tally.js';
import { openFds } from './runtime/open-fds.js';
import type { SubscriptionKind } from './subs/subscription-params.js';
import type { DisconnectReason, RequestOutcome, Telemetry } from './telemetry.js';

const KNOWN_METHODS = new Set(
  `eth_blockNumber eth_call eth_chainId eth_estimateGas eth_feeHistory eth_gasPrice eth_getBalance eth_getBlockByHash
  eth_getBlockByNumber eth_getBlockReceipts eth_getBlockTransactionCountByHash eth_getBlockTransactionCountByNumber eth_getCode
  eth_getFilterChanges eth_getFilterLogs eth_getLogs eth_getProof eth_getStorageAt eth_getTransactionByBlockHashAndIndex
  eth_getTransactionByBlockNumberAndIndex eth_getTransactionByHash eth_getTransactionCount eth_getTransactionReceipt
  eth_getUncleByBlockHashAndIndex eth_getUncleCountByBlockHash eth_maxPriorityFeePerGas eth_newBlockFilter eth_newFilter
  eth_newPendingTransactionFilter eth_sendRawTransaction eth_subscribe eth_syncing eth_uninstallFilter eth_unsubscribe
  eth_accounts eth_blobBaseFee eth_createAccessList eth_simulateV1 net_version net_listening net_peerCount web3_clientVersion web3_sha3
  eth_sendTransaction eth_sendRawTransactionSync eth_sendRawTransactionConditional eth_fillTransaction eth_getTransactionBySenderAndNonce
  eth_getUncleByBlockNumberAndIndex eth_getUncleCountByBlockNumber`
    .split(/\s+/)
    .map(canonicalMethod),
);

/** `method` canonical (method-names.ts), as the dispatcher passes it on: then the lookup compares addresses. */
export function methodLabel(method: string): string {
  return KNOWN_METHODS.has(method) ? method : 'other';
}

const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** prom-client's event-loop gauges, reset by every scrape, whoever made it: loop-delay-metric.ts stands in. */
const UNUSED_MONITOR_MS = 60_000;
const RESET_BY_SCRAPES = ['min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p99'].map((stat) => `evmux_process_nodejs_eventloop_lag_${stat}_seconds`);

export class Metrics implements Telemetry {
  readonly registry = new Registry();
  readonly #clientConnections: Gauge;
  readonly #clientDisconnects: Counter;
  readonly #clientRejections: Counter;
  readonly #clientSubscriptions: Gauge;
  readonly #upstreamSubscriptions: Gauge;
  readonly #upstreamUp: Gauge;
  readonly #upstreamHead: Gauge;
  readonly #calls = new CallStats(DURATION_BUCKETS);
  readonly #clientErrors: Counter;
  readonly #failovers: Counter;
  readonly #replayed: Counter;
  readonly #replayTruncations: Counter;
  readonly #reorgs: Counter;
  readonly #reorgsSeen = new ReorgTally();
  readonly #filterMoves: Counter;
  readonly #filterReplayed: Counter;
  readonly #streamStepFailures: Counter;
  readonly #accepting: Gauge;
  readonly #acceptPauses: Counter;
  readonly #stopLoopDelay: () => void;

  constructor(upstreams: readonly string[]) {
    const registers = [this.registry];
    // prom-client's delay monitor cannot be left out; it feeds only the gauges removed below, so it samples once a minute.
    collectDefaultMetrics({ register: this.registry, prefix: 'evmux_process_', eventLoopMonitoringPrecision: UNUSED_MONITOR_MS });
    for (const name of RESET_BY_SCRAPES) this.registry.removeSingleMetric(name);
    this.#stopLoopDelay = sampleLoopDelay(this.registry);
    // prom-client's own lists the descriptors on the event loop; this one counts them off it (open-fds.ts).
    this.registry.removeSingleMetric('evmux_process_process_open_fds');
    new Gauge({
      name: 'evmux_process_process_open_fds',
      help: 'Number of open file descriptors.',
      registers,
      async collect() {
        const count = await openFds();
        if (count !== undefined) this.set(count);
      },
    });
    this.#clientConnections = new Gauge({ name: 'evmux_client_connections', help: 'Open client WebSocket connections', registers });
    this.#clientDisconnects = new Counter({
      name: 'evmux_client_disconnects_total',
      help: 'Client WebSocket disconnections by reason (slow_consumer = send buffer over its cap)',
      labelNames: ['reason'],
      registers,
    });
    this.#clientRejections = new Counter({
      name: 'evmux_client_rejections_total',
      help: 'Client connections (connections_per_ip, connections: the server-wide cap) and requests (rate_limit; log_filters: distinct logs filters on a node; log_filters_per_ip: from one address; installed_filters_per_ip: eth_new*Filter filters from one address; body_size: an HTTP body over limits.maxRequestBytes; body_timeout: an HTTP body not in within limits.requestBodyTimeoutMs; answer_unread: an HTTP answer not read on for 10 s, cut) refused, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.#clientSubscriptions = new Gauge({ name: 'evmux_client_subscriptions', help: 'Live client subscriptions', labelNames: ['kind'], registers });
    this.#upstreamSubscriptions = new Gauge({
      name: 'evmux_upstream_subscriptions',
      help: 'Live eth_subscribe subscriptions evmux holds on each upstream (its own newHeads included)',
      labelNames: ['upstream', 'kind'],
      registers,
    });
    this.#upstreamUp = new Gauge({ name: 'evmux_upstream_up', help: '1 when the upstream is usable for traffic', labelNames: ['upstream'], registers });
    this.#upstreamHead = new Gauge({ name: 'evmux_upstream_head', help: 'Latest block number seen from the upstream', labelNames: ['upstream'], registers });
    const calls = this.#calls;
    new Counter({
      name: 'evmux_requests_total',
      help: 'Calls sent to upstreams for clients and for subscription streams (replays, reorgs), by method, upstream and outcome (ok, rpc_error, timeout, transport_error, rejected: never sent, too_large: an answer over limits.maxAnswerBytes)',
      labelNames: ['method', 'upstream', 'outcome'],
      registers,
      collect() {
        this.reset();
        calls.forEachCount((labels, count) => this.inc(labels, count));
      },
    });
    this.#clientErrors = new Counter({ name: 'evmux_client_errors_total', help: 'JSON-RPC errors returned to clients by evmux, by code', labelNames: ['code'], registers });
    this.#failovers = new Counter({ name: 'evmux_failovers_total', help: 'Subscription groups moved to another upstream', labelNames: ['kind'], registers });
    this.#replayed = new Counter({
      name: 'evmux_replayed_notifications_total',
      help: 'Notifications delivered from replay (gap fill after failover or missed heads) rather than live',
      labelNames: ['kind'],
      registers,
    });
    this.#replayTruncations = new Counter({
      name: 'evmux_replay_truncations_total',
      help: 'Replays cut short by the block or time bound: the stream jumped to the head',
      labelNames: ['kind'],
      registers,
    });
    this.#reorgs = new Counter({ name: 'evmux_reorgs_total', help: 'Reorgs seen on delivered streams', registers });
    this.#filterMoves = new Counter({
      name: 'evmux_filter_moves_total',
      help: 'Filters made again under the same id because their node went down (node_down), lags, stalled or serves another chain (node_unusable), came back without them (filter_lost), or is a fallback and a primary has been usable again for subscriptions.holdDownMs (primary_back)',
      labelNames: ['kind', 'reason'],
      registers,
    });
    this.#filterReplayed = new Counter({
      name: 'evmux_filter_replayed_total',
      help: 'Logs and block hashes a moved filter handed over from the blocks its client missed',
      labelNames: ['kind'],
      registers,
    });
    this.#streamStepFailures = new Counter({
      name: 'evmux_stream_step_failures_total',
      help: 'Stream steps (advance, catch-up) that failed on an upstream and are retried; logged at most once per 10 s per upstream and message',
      labelNames: ['upstream', 'kind'],
      registers,
    });
    this.#accepting = new Gauge({
      name: 'evmux_accepting_clients',
      help: '0 while the client port is closed because client connections hold every open file evmux may have, else 1',
      registers,
    });
    this.#acceptPauses = new Counter({ name: 'evmux_accept_pauses_total', help: 'Times the client port closed for want of open files', registers });
    for (const upstream of upstreams) {
      this.#upstreamUp.set({ upstream }, 0);
      for (const kind of ['newHeads', 'logs', 'newPendingTransactions', 'syncing']) this.#upstreamSubscriptions.set({ upstream, kind }, 0);
    }
    for (const kind of ['newHeads', 'logs', 'newPendingTransactions', 'syncing']) {
      this.#clientSubscriptions.set({ kind }, 0);
      this.#failovers.inc({ kind }, 0);
      this.#replayed.inc({ kind }, 0);
    }
  }

  /**
   * Per upstream at each scrape: calls in flight, and calls waiting in its queue (every slot taken,
   * upstreams[].maxConcurrency, or its sockets' room used up, upstreams[].maxBytesInFlight).
   */
  collectUpstreamLoad(load: () => ReadonlyArray<{ name: string; inFlight: number; queued: number }>): void {
    const registers = [this.registry];
    new Gauge({
      name: 'evmux_upstream_in_flight',
      help: 'Calls sent to the upstream and not answered yet',
      labelNames: ['upstream'],
      registers,
      collect() {
        for (const upstream of load()) this.set({ upstream: upstream.name }, upstream.inFlight);
      },
    });
    new Gauge({
      name: 'evmux_upstream_queued',
      help: 'Calls waiting for the upstream: every slot taken (upstreams[].maxConcurrency) or its sockets full (upstreams[].maxBytesInFlight)',
      labelNames: ['upstream'],
      registers,
      collect() {
        for (const upstream of load()) this.set({ upstream: upstream.name }, upstream.queued);
      },
    });
  }

  /** The /metrics body: prom-client's registry plus the call latency histogram kept by CallStats. */
  async exposition(): Promise<string> {
    const text = await this.registry.metrics();
    return `${text}\n${this.#calls.histogramText('evmux_request_duration_seconds', 'Upstream call latency per attempt')}`;
  }

  clientConnected(): void {
    this.#clientConnections.inc();
  }
  clientDisconnected(reason: DisconnectReason): void {
    this.#clientConnections.dec();
    this.#clientDisconnects.inc({ reason });
  }
  clientRejected(reason: string): void {
    this.#clientRejections.inc({ reason });
  }
  clientSubscriptionsChanged(kind: SubscriptionKind, delta: number): void {
    this.#clientSubscriptions.inc({ kind }, delta);
  }
  upstreamSubscriptionsChanged(upstream: string, kind: SubscriptionKind, delta: number): void {
    this.#upstreamSubscriptions.inc({ upstream, kind }, delta);
  }
  upstreamState(upstream: string, up: boolean): void {
    this.#upstreamUp.set({ upstream }, up ? 1 : 0);
  }
  upstreamHead(upstream: string, head: bigint | null): void {
    // No head known (down, reconnecting): no sample, rather than the last one of a node now gone.
    if (head === null) this.#upstreamHead.remove({ upstream });
    else this.#upstreamHead.set({ upstream }, Number(head));
  }
  requestFinished(method: string, upstream: string, outcome: RequestOutcome, seconds: number): void {
    this.#calls.record(methodLabel(method), upstream, outcome, seconds);
  }
  clientError(code: number): void {
    this.#clientErrors.inc({ code: String(code) });
  }
  failover(kind: SubscriptionKind): void {
    this.#failovers.inc({ kind });
  }
  replayed(kind: SubscriptionKind, count: number): void {
    this.#replayed.inc({ kind }, count);
  }
  replayTruncated(kind: SubscriptionKind): void {
    this.#replayTruncations.inc({ kind });
  }
  reorg(orphaned: readonly ChainLink[], delivered: readonly ChainLink[]): void {
    // Every topic and group that went over the reorg reports it, each with its own part of it.
    if (this.#reorgsSeen.note(orphaned, delivered)) this.#reorgs.inc();
  }
  filterMoved(kind: FilterKind, reason: FilterMoveReason, replayed: number): void {
    this.#filterMoves.inc({ kind, reason });
    this.#filterReplayed.inc({ kind }, replayed);
  }
  streamStepFailed(upstream: string, kind: SubscriptionKind): void {
    this.#streamStepFailures.inc({ upstream, kind });
  }
  accepting(on: boolean): void {
    this.#accepting.set(on ? 1 : 0);
    if (!on) this.#acceptPauses.inc();
  }

  /** Stop the event-loop delay sampler (the gateway is closing). */
  close(): void {
    this.#stopLoopDelay();
  }
}
