/**
 * One upstream node: a few persistent connections for calls, a concurrency cap with a bounded
 * queue, a circuit breaker fed by transport failures, active health probes and head tracking, and
 * the socket that carries the upstream side of client subscriptions (stream-carrier.ts).
 */
import { performance } from 'node:perf_hooks';
import { EventEmitter } from 'node:events';
import type { Config, UpstreamConfig } from '../config/schema.js';
import { quantity } from '../jsonrpc/hex.js';
import type { Logger } from '../log.js';
import { redactUrl } from '../log.js';
import type { ChainGuard } from './chain-guard.js';
import { CircuitBreaker, type BreakerState } from './circuit-breaker.js';
import { UpstreamConnection } from './connection.js';
import { IsolatedSocket } from './isolated-socket.js';
import { OWN_CALLS, type OversizedClients } from './oversized-clients.js';
import { isSocketGone, NodeRpcError, UpstreamFailure } from './errors.js';
import { FrameLimit } from './frame-limit.js';
import { FairQueue } from './fair-queue.js';
import type { TrackedHead } from './head.js';
import { StreamCarrier, type UpstreamSubscription } from './stream-carrier.js';
import { rejectLater, replyResult, requestVia, type Caller, type CallSender, type ReplySink, type UpstreamReply } from './reply.js';

/**
 * The most an eth_blockNumber answer to a client may raise a node's known head by (probes keep it
 * at most a probe interval old): past it, the answer is taken for a broken one.
 */
const REPORTED_HEAD_MAX_LEAD = 64n;

/** A latency estimate no call refreshes halves in this time (Upstream.#fadeLatency). */
const LATENCY_HALF_LIFE_MS = 2000;

export interface UpstreamEvents {
  /** usable-for-traffic may have changed (health, breaker, connection) */
  state: [];
  /** a new head seen on this node (from a newHeads subscription), for lag tracking; `previous`, the one it announced before */
  head: [head: TrackedHead, previous: TrackedHead | undefined];
  /** its head number rose (a stream's head, a probe's answer, or an answer to a client) */
  height: [number: bigint];
  /** a notification for one of this node's subscriptions */
  notification: [subscription: string, result: unknown];
  /** this node's subscriptions are gone: their socket closed, or they moved to another */
  subscriptionsLost: [];
}

export interface UpstreamSnapshot {
  name: string;
  url: string;
  weight: number;
  role: UpstreamConfig['role'];
  connected: boolean;
  /** subscriptions ride on the socket of their own (upstreams[].streamSocket "own"), not on a call socket */
  streamsOnOwnSocket: boolean;
  healthy: boolean;
  breaker: BreakerState;
  head: string | null;
  headHash: string | null;
  inFlight: number;
  /** request bytes sent on its sockets that it may not have read yet (upstreams[].maxBytesInFlight is per socket) */
  bytesInFlight: number;
  /** the socket for the calls of clients whose answers passed limits.maxAnswerBytes (IsolatedSocket.state) */
  isolatedSocket: IsolatedSocket['state'];
  queued: number;
  latencyMs: number;
  /** why the node is kept out for serving another chain; null when its chain is right or unknown yet */
  wrongChain: string | null;
  /** the last thing that went wrong with it (a connect attempt, a socket, a probe), kept after it recovers; null when nothing has */
  lastError: { at: string; reason: string } | null;
}

interface QueuedCall {
  readonly client: string;
  /** takes a slot and sends the call, now */
  release(): void;
  refuse(): void;
}

type Settings = Pick<Config, 'health' | 'heartbeat' | 'reconnect' | 'breaker' | 'limits'>;

/**
 * How long a node stays usable with its only call socket closed by evmux for an answer over
 * limits.maxAnswerBytes, while that socket reconnects (at once): as "not connected" the node left
 * rotation, and every session on it moved away and back, on one client's oversized read.
 */
const OWN_CLOSE_GRACE_MS = 1_000;

export class Upstream extends EventEmitter<UpstreamEvents> implements CallSender {
  readonly name: string;
  readonly weight: number;
  /** a fallback serves only while no primary is usable */
  readonly role: UpstreamConfig['role'];
  readonly #config: UpstreamConfig;
  readonly #settings: Settings;
  readonly #logger: Logger;
  /** the sockets calls go out on */
  readonly #connections: UpstreamConnection[];
  /** every socket to the node: the call sockets, and the one for subscriptions when it has its own */
  readonly #sockets: UpstreamConnection[];
  /** the request frames the node takes, learned by its sockets together */
  readonly #frameLimit = new FrameLimit();
  readonly #streams: StreamCarrier;
  readonly #breaker: CircuitBreaker;
  /** calls waiting for a slot, served client by client (fair-queue.ts) */
  readonly #queue: FairQueue<QueuedCall>;
  #active = 0;
  #latencyMs = 0;
  /** the head number was last raised by an eth_blockNumber answer, not by the newHeads stream */
  #headReported = false;
  /** since the head number last changed, the node's stream announced a head below it (noteStreamWentBack) */
  #streamWentBack = false;
  /** calls measured since the last probe tick (#fadeLatency) */
  #latencySamples = 0;
  #healthy = false;
  #probeFailures = 0;
  #probeSuccesses = 0;
  #probeTimer: NodeJS.Timeout | undefined;
  #probing = false;
  #head: TrackedHead | undefined;
  /** the head its stream had brought when all its sockets last closed, if the node had none later; until one opens */
  #headAtClose: TrackedHead | undefined;
  #headNumber = -1n;
  #headChangedAt = performance.now();
  /** when the node last said what its head is (a stream head, a probe's answer), performance.now() */
  #headLearnedAt = -Infinity;
  #closed = false;
  #neverUp = true;
  /**
   * Down because its sockets closed, with no probe failing since: its first good probe once a
   * socket is back brings it up. Cleared once probes fail failureThreshold times (a longer
   * outage: recoveryThreshold good probes then).
   */
  #downForSockets = false;
  readonly #chain: ChainGuard;
  readonly #oversized: OversizedClients;
  /** the socket for the calls of clients in #oversized */
  readonly #isolated: IsolatedSocket;
  /** why the node its sockets last reached was refused (another chain), until a socket passes */
  #wrongChain: string | undefined;
  /** when evmux last closed one of its sockets for a reason of its own (performance.now(); Connection 'close') */
  #ownCloseAt = -Infinity;
  /** calls made while the only call sockets reopen after such a close: sent once one is open */
  readonly #reopenWaiters: Array<() => void> = [];
  #lastError: { at: string; reason: string } | undefined;
  /** #dispatch is due in a microtask */
  #dispatchQueued = false;

  /** `oversized`: the clients whose calls some node answered over maxAnswerBytes lately, shared by the nodes. */
  constructor(config: UpstreamConfig, settings: Settings, logger: Logger, chain: ChainGuard, oversized: OversizedClients) {
    super();
    this.#chain = chain;
    this.#oversized = oversized;
    this.setMaxListeners(0);
    this.name = config.name;
    this.weight = config.weight;
    this.role = config.role;
    this.#config = config;
    this.#settings = settings;
    this.#logger = logger.child({ upstream: config.name });
    this.#queue = new FairQueue(config.maxQueue);
    this.#breaker = new CircuitBreaker(settings.breaker, () => performance.now(), (state) => {
      this.#logger.warn({ breaker: state }, 'circuit breaker state changed');
      this.emit('state');
    });
    this.#connections = Array.from({ length: config.connections }, (_, index) => this.#newConnection(index));
    const own = config.streamSocket === 'own' ? this.#newConnection('streams') : undefined;
    this.#sockets = own === undefined ? this.#connections : [...this.#connections, own];
    // Listening first: a closed socket's subscriptions are lost before the node's state changes.
    this.#streams = new StreamCarrier(config.name, own, this.#connections);
    this.#streams.on('notification', (subscription, result) => this.emit('notification', subscription, result));
    this.#streams.on('lost', () => this.emit('subscriptionsLost'));
    this.#streams.on('ready', () => this.emit('state'));
    for (const connection of this.#sockets) {
      connection.on('failed', (reason) => this.#noteError(reason));
      connection.on('refused', (reason) => this.#noteWrongChain(reason));
      // One socket open again: the node is back, and its other sockets need not wait out their backoff.
      connection.on('open', () => {
        this.#wrongChain = undefined;
        for (const other of this.#sockets) if (other !== connection) other.reconnectNow();
      });
    }
    this.#isolated = new IsolatedSocket(() => this.#noteOversized(this.#newConnection('isolated')), this.#logger.child({ socket: 'isolated' }));
    for (const connection of this.#connections) {
      this.#noteOversized(connection);
      connection.on('open', () => this.#onConnectionOpen());
      connection.on('close', (own) => this.#onConnectionClose(own));
      connection.on('room', () => this.#dispatchSoon());
    }
  }

  /** The clients whose calls `connection` has answered over maxAnswerBytes are noted as such. */
  #noteOversized(connection: UpstreamConnection): UpstreamConnection {
    connection.on('oversized', (client) => this.#oversized.note(client));
    return connection;
  }

  #newConnection(socket: number | 'streams' | 'isolated'): UpstreamConnection {
    return new UpstreamConnection({
      upstream: this.name,
      url: this.#config.url,
      headers: this.#config.headers,
      heartbeat: this.#settings.heartbeat,
      reconnect: this.#settings.reconnect,
      maxAnswerBytes: this.#settings.limits.maxAnswerBytes,
      maxBytesInFlight: this.#config.maxBytesInFlight,
      frameLimit: this.#frameLimit,
      identity: { check: (ask) => this.#chain.checkSocket(ask), timeoutMs: this.#settings.health.probeTimeoutMs },
      logger: this.#logger.child({ socket }),
    });
  }

  start(): void {
    this.#logger.info({ url: redactUrl(this.#config.url), headerNames: Object.keys(this.#config.headers) }, 'upstream starting');
    for (const connection of this.#sockets) connection.start();
    const fade = 0.5 ** (this.#settings.health.probeIntervalMs / LATENCY_HALF_LIFE_MS);
    this.#probeTimer = setInterval(() => {
      this.#isolated.closeIfIdle();
      this.#fadeLatency(fade);
      void this.#probe().catch(() => {});
    }, this.#settings.health.probeIntervalMs);
  }

  /** Ask the node its head now, between probes (a read waits for a block this node may have by now). */
  refreshHead(): void {
    void this.#probe().catch(() => {});
  }

  /** Some call socket is open. */
  get connected(): boolean {
    return this.#connections.some((connection) => connection.isOpen);
  }

  /** Resolves true once a call socket is open (at once if one is), false at `until` (performance.now()) or at close. */
  untilConnected(until: number): Promise<boolean> {
    if (this.connected || this.#closed || until <= performance.now()) return Promise.resolve(this.connected);
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.off('state', onState);
        resolve(this.connected);
      };
      const onState = (): void => {
        if (this.connected || this.#closed) done();
      };
      const timer = setTimeout(done, until - performance.now()).unref();
      this.on('state', onState);
    });
  }

  /**
   * Connected (or reconnecting right after evmux closed a socket for a reason of its own: a message
   * over limits.maxAnswerBytes no call asked for, a request the node refused), passing probes,
   * breaker not open. Lag and stall are judged by the pool.
   */
  get healthy(): boolean {
    return this.#healthy && (this.connected || this.#reopening) && this.#breaker.state !== 'open';
  }

  /** Calls it takes at once (upstreams[].maxConcurrency); more wait in its fair queue. */
  get maxConcurrency(): number {
    return this.#config.maxConcurrency;
  }

  get inFlight(): number {
    return this.#active + this.#queue.size;
  }

  get latencyMs(): number {
    return this.#latencyMs;
  }

  get head(): TrackedHead | undefined {
    return this.#head;
  }

  /** The hash of the node's head when its stream announced the height it is known at; else undefined. */
  get headHash(): string | undefined {
    return this.#head !== undefined && this.#head.number === this.#headNumber ? this.#head.hash : undefined;
  }

  /**
   * While every socket of the node is closed: the head its stream had brought when they closed,
   * if the node was known to have none later (`head` is cleared then: the node may come back with a
   * shorter chain). What a new logs subscription answered while the node is away starts at. Not a
   * head from before a quiet spell of its stream (no client followed it, and probes saw the node
   * move on): a subscription started there was sent the logs of 40 blocks from before it.
   */
  get headAtClose(): TrackedHead | undefined {
    return this.#headAtClose;
  }

  /** Best known head height (from newHeads or probes); -1 when unknown. */
  get headNumber(): bigint {
    return this.#headNumber;
  }

  /** When the node last said what its head is (its newHeads stream, a probe's answer), on the performance.now() clock. */
  get headLearnedAt(): number {
    return this.#headLearnedAt;
  }

  get headChangedAt(): number {
    return this.#headChangedAt;
  }

  get subscriptionsReady(): boolean {
    return this.#streams.ready;
  }

  /** Send a call through the concurrency cap and breaker. Rejects with UpstreamFailure on transport trouble. `caller`: whose call it is (none for evmux's own). */
  request(method: string, params: unknown, timeoutMs: number, caller?: Caller): Promise<UpstreamReply> {
    return requestVia(this, method, params, timeoutMs, caller);
  }

  /**
   * Send a call through the concurrency cap and breaker; the reply or an UpstreamFailure goes to
   * `sink`, never synchronously. The common case takes a free slot at once; only a full node (every
   * slot taken, or its sockets' room, upstreams[].maxBytesInFlight, used up) makes callers wait in
   * the queue.
   */
  send(method: string, params: unknown, timeoutMs: number, sink: ReplySink): void {
    if (!this.#breaker.tryAcquire()) {
      rejectLater(sink, new UpstreamFailure('EVMUX_CIRCUIT_OPEN', `${this.name}: circuit open`, this.name));
      return;
    }
    // Calls waiting go first: a newcomer that found room before them would jump the queue.
    if (this.#queue.size === 0 && this.#canSend()) {
      this.#active++;
      this.#sendHoldingSlot(method, params, timeoutMs, sink);
      return;
    }
    const deadline = performance.now() + timeoutMs;
    this.#waitForSlot(timeoutMs, sink, () => this.#sendHoldingSlot(method, params, Math.max(1, deadline - performance.now()), sink));
  }

  /**
   * A slot is free, and the socket a call would go on has room for it. With no socket open, the
   * call goes ahead and fails (or waits for one reopening) in #sendHoldingSlot.
   */
  #canSend(): boolean {
    return this.#active < this.#config.maxConcurrency && (this.#pickConnection()?.hasRoom ?? true);
  }

  /**
   * Slots or room freed: the calls waiting go, client by client in turn, while both last. Not at
   * once: a slot or room is freed in the midst of a socket's events (an answer read, the socket
   * closing), and what else they change (the socket closed, the node's state) must be seen first.
   * A call let go onto a socket closing under it failed as "not connected", and opened the breaker.
   */
  #dispatchSoon(): void {
    if (this.#dispatchQueued || this.#queue.size === 0) return;
    this.#dispatchQueued = true;
    queueMicrotask(this.#dispatch);
  }

  readonly #dispatch = (): void => {
    this.#dispatchQueued = false;
    while (this.#queue.size > 0 && this.#canSend()) this.#queue.shift()!.release();
  };

  /** With a slot held: one call on the least busy socket; the slot is released when it settles. */
  #sendHoldingSlot(method: string, params: unknown, timeoutMs: number, sink: ReplySink): void {
    const call = new SlotHolder(this.#settled, sink);
    if (this.#oversized.active() && this.#oversized.has(sink.clientId ?? OWN_CALLS)) {
      this.#isolated.send(method, params, timeoutMs, call, (leftMs) => this.#sendShared(method, params, leftMs, call));
      return;
    }
    this.#sendShared(method, params, timeoutMs, call);
  }

  /** #sendHoldingSlot on the sockets every client shares. */
  #sendShared(method: string, params: unknown, timeoutMs: number, call: SlotHolder): void {
    const connection = this.#pickConnection();
    if (connection !== undefined) connection.send(method, params, timeoutMs, call);
    // No socket open in the moment after evmux closed one for a reason of its own: it reopens at once.
    else if (this.#reopening) this.#sendOnReopen(method, params, timeoutMs, call);
    // Still healthy with no socket open: the moment after evmux closed one itself, not the node's doing.
    else rejectLater(call, this.#notConnected(!this.#healthy));
  }

  /** Within OWN_CLOSE_GRACE_MS of evmux closing a call socket for a reason of its own (#onConnectionClose). */
  get #reopening(): boolean {
    return performance.now() - this.#ownCloseAt < OWN_CLOSE_GRACE_MS;
  }

  #notConnected(blamesNode: boolean): UpstreamFailure {
    return new UpstreamFailure('EVMUX_NOT_CONNECTED', `${this.name}: not connected`, this.name, blamesNode);
  }

  /** Send `call` once a call socket is open again, or fail it as not connected at the end of the grace. */
  #sendOnReopen(method: string, params: unknown, timeoutMs: number, call: SlotHolder): void {
    const started = performance.now();
    const waitMs = Math.min(timeoutMs, OWN_CLOSE_GRACE_MS - (started - this.#ownCloseAt));
    const timer = setTimeout(() => {
      const at = this.#reopenWaiters.indexOf(send);
      if (at >= 0) this.#reopenWaiters.splice(at, 1);
      call.reject(this.#notConnected(false));
    }, Math.max(1, waitMs));
    const send = (): void => {
      clearTimeout(timer);
      const connection = this.#pickConnection();
      const left = timeoutMs - (performance.now() - started);
      if (connection === undefined || left < 1) call.reject(this.#notConnected(false));
      else connection.send(method, params, left, call);
    };
    this.#reopenWaiters.push(send);
  }

  /**
   * A call that held a slot settled: free the slot, tell the breaker, track latency. A failure that
   * does not blame the node (UpstreamFailure.blamesNode) tells the breaker nothing. A call that
   * timed out took at least `ms` (its timeout): that counts as its latency, so a node that answers
   * probes but lets calls hang does not stay the fastest. Bound once, shared by every call.
   */
  readonly #settled = (outcome: 'answered' | 'failed' | 'blameless', ms: number): void => {
    this.#releaseSlot();
    if (outcome === 'answered') this.#breaker.recordSuccess();
    else if (outcome === 'failed') this.#breaker.recordFailure();
    if (ms > 0) this.#recordLatency(ms);
  };

  /** Parsed-result convenience for evmux's own calls (probes, replay). Node errors reject. */
  async call<T>(method: string, params: unknown[], timeoutMs: number): Promise<T> {
    const reply = await this.request(method, params, timeoutMs);
    if (reply.error) throw new NodeRpcError(`${this.name}: ${method} failed: ${reply.error.message}`, reply.error.code, reply.error.message);
    return replyResult(reply) as T;
  }

  /** eth_subscribe on the socket that carries subscriptions. */
  subscribe(params: unknown[], timeoutMs: number): Promise<UpstreamSubscription> {
    return this.#streams.subscribe(params, timeoutMs);
  }

  unsubscribe(subscription: UpstreamSubscription, timeoutMs: number): Promise<void> {
    return this.#streams.unsubscribe(subscription, timeoutMs);
  }

  snapshot(): UpstreamSnapshot {
    return {
      name: this.name,
      url: redactUrl(this.#config.url),
      weight: this.weight,
      role: this.role,
      connected: this.connected,
      streamsOnOwnSocket: this.#streams.onOwnSocket,
      healthy: this.healthy,
      breaker: this.#breaker.state,
      head: this.#headNumber >= 0n ? this.#headNumber.toString() : null,
      headHash: this.headHash ?? null,
      inFlight: this.#active,
      bytesInFlight: this.#sockets.reduce((sum, connection) => sum + connection.bytesInFlight, this.#isolated.bytesInFlight),
      isolatedSocket: this.#isolated.state,
      queued: this.#queue.size,
      latencyMs: Math.round(this.#latencyMs * 100) / 100,
      wrongChain: this.#wrongChain ?? null,
      lastError: this.#lastError ?? null,
    };
  }

  #noteError(reason: string): void {
    this.#lastError = { at: new Date().toISOString(), reason };
  }

  /** Drop the socket its subscriptions ride on, to be made anew (stream-carrier.ts). */
  reconnectStreams(reason: string): void {
    this.#streams.reconnect(reason);
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#probeTimer);
    this.#streams.close();
    for (const connection of this.#sockets) connection.close();
    this.#isolated.close();
    // With every socket closed, each fails as not connected (and clears its timer).
    for (const waiting of this.#queue.drain()) waiting.release();
    for (const send of this.#reopenWaiters.splice(0)) send();
  }

  /**
   * Wait in the fair queue until #dispatch lets the call go (`start`, with a slot taken); refused
   * when the queue is full of this client's share or more. The call goes the moment it is let go,
   * so that the next one let go sees the room it took.
   */
  #waitForSlot(timeoutMs: number, sink: ReplySink, start: () => void): void {
    const waiting: QueuedCall = {
      client: sink.client ?? '',
      release: () => {
        clearTimeout(timer);
        this.#active++;
        start();
      },
      refuse: () => {
        clearTimeout(timer);
        rejectLater(sink, new UpstreamFailure('EVMUX_QUEUE_FULL', `${this.name}: request queue full (${this.#config.maxQueue} calls waiting, upstreams[].maxQueue, behind ${this.#config.maxConcurrency} in flight, upstreams[].maxConcurrency)`, this.name));
      },
    };
    const timer = setTimeout(() => {
      if (this.#queue.remove(waiting)) sink.reject(new UpstreamFailure('EVMUX_QUEUE_TIMEOUT', `${this.name}: queued for ${timeoutMs} ms behind ${this.#config.maxConcurrency} calls in flight (upstreams[].maxConcurrency)`, this.name));
    }, timeoutMs);
    this.#queue.push(waiting)?.refuse();
  }

  #releaseSlot(): void {
    this.#active--;
    this.#dispatchSoon();
  }

  /** The open call socket with the fewest calls in flight, one with room (upstreams[].maxBytesInFlight) before one without. */
  #pickConnection(): UpstreamConnection | undefined {
    let best: UpstreamConnection | undefined;
    for (const connection of this.#connections) {
      if (!connection.isOpen) continue;
      if (best === undefined || (connection.hasRoom && !best.hasRoom) || (connection.hasRoom === best.hasRoom && connection.inFlight < best.inFlight)) best = connection;
    }
    return best;
  }

  #recordLatency(ms: number): void {
    this.#latencyMs = this.#latencyMs === 0 ? ms : this.#latencyMs * 0.8 + ms * 0.2;
    this.#latencySamples++;
  }

  /**
   * An estimate no call has refreshed since the last tick fades (halving every
   * LATENCY_HALF_LIFE_MS): a node that answered a few calls slowly (a pause, a timeout) is tried
   * again in time and measured anew. Balancers break ties by latency, so without it a client making
   * one call at a time never sent that node another call, and one node carried everything.
   */
  #fadeLatency(factor: number): void {
    if (this.#latencySamples === 0) this.#latencyMs *= factor;
    this.#latencySamples = 0;
  }

  #onConnectionOpen(): void {
    this.#headAtClose = undefined;
    for (const send of this.#reopenWaiters.splice(0)) send();
    this.#dispatchSoon();
    void this.#probe().catch(() => {});
    this.emit('state');
  }

  /** `own`: evmux closed the socket itself (a message over its limit no call asked for); the node stays healthy, and the socket comes back at once. */
  #onConnectionClose(own: boolean): void {
    // Shutting down: the node is not down, evmux is leaving it.
    if (this.#closed) return;
    // The calls it failed are not counted one by one (SlotHolder): the close is the one failure.
    if (!own) this.#breaker.recordFailure();
    else this.#ownCloseAt = performance.now();
    if (!this.connected && !own) {
      // Down at once: a dead socket needs no probe to confirm it.
      this.#setHealthy(false, 'all sockets closed');
      this.#downForSockets = true;
      // It may come back with a shorter chain (restarted, resyncing), which probes that only ever
      // raise the head would never notice: learn its head anew.
      this.#headAtClose = this.#head !== undefined && this.#head.number >= this.#headNumber ? this.#head : undefined;
      this.#head = undefined;
      this.#headNumber = -1n;
    }
    this.emit('state');
  }

  /**
   * Whether a head this node announces is believable: not more than REPORTED_HEAD_MAX_LEAD past
   * what it said before (one absurd frame would stand as its head and the chain's, and freeze every
   * stream on it). A node catching up from further behind gets there through its probes.
   */
  isPlausibleHead(number: bigint): boolean {
    return this.#headNumber < 0n || number <= this.#headNumber + REPORTED_HEAD_MAX_LEAD;
  }

  /** A head seen on this node's newHeads stream: the freshest view of its height. */
  noteHead(head: TrackedHead): void {
    this.#headLearnedAt = performance.now();
    this.#headReported = false;
    this.#noteHeadNumber(head.number);
    const previous = this.#head;
    this.#head = head;
    this.emit('head', head, previous);
  }

  /**
   * The node's stream announced a head below its known height: a rewind (evm_revert, a reorg to a
   * shorter branch), or an older head repeated (a provider's stream fed by backends a block apart).
   * Not believed alone; the next probe that answers below the known height is (#noteProbedHead).
   * Without it, a node whose stream set its head kept that height after a rewind until the chain
   * grew past it again: eth_blockNumber answered a block no node had.
   */
  noteStreamWentBack(): void {
    this.#streamWentBack = true;
  }

  /**
   * A height the node said it has, in an answer to eth_blockNumber (a probe's or a client's) or
   * in a block it answered with (eth_getBlockByNumber, eth_getLogs, a receipt): a client that
   * learns of block N from one node and asks for it next is then sent to a node known to have it,
   * not to one whose last known head is older.
   */
  noteReportedHead(number: bigint): void {
    // Far beyond what its stream and probes said: a broken answer, not a head. Believed, it made
    // every other node "lagging" and was handed to every client as the chain's head.
    if (number <= this.#headNumber || !this.isPlausibleHead(number)) return;
    this.#headReported = true;
    this.#noteHeadNumber(number);
  }

  /**
   * A probe's answer: the node's own head now. It raises the head, and it also lowers one that a
   * report (a client's answer, an earlier probe) raised more than health.maxLagBlocks above it: an
   * answer that was wrong lasts one probe interval, not until the node's socket closes; and any
   * head once the node's stream went below it too (noteStreamWentBack). Not by less otherwise: a
   * node whose sockets reach backends a block apart (a provider behind a load balancer) would move
   * its head back and forth, and eth_blockNumber, held to the highest head, with it.
   */
  #noteProbedHead(number: bigint): void {
    const lowers = this.#streamWentBack || (this.#headReported && this.#headNumber - number > BigInt(this.#settings.health.maxLagBlocks));
    if (number < this.#headNumber && !lowers) return;
    if (number !== this.#headNumber) this.#headReported = true;
    this.#noteHeadNumber(number);
  }

  #noteHeadNumber(number: bigint): void {
    if (number !== this.#headNumber) {
      this.#streamWentBack = false;
      const higher = number > this.#headNumber;
      this.#headNumber = number;
      this.#headChangedAt = performance.now();
      if (higher) this.emit('height', number);
    }
  }

  async #probe(): Promise<void> {
    if (this.#probing || this.#closed) return;
    this.#probing = true;
    try {
      const connection = this.#pickConnection();
      if (connection === undefined && this.#reopening) {
        this.#logger.debug('probe skipped: the socket evmux closed for a reason of its own is reconnecting');
        return;
      }
      if (connection === undefined) throw new Error('not connected');
      const mark = connection.progressMark();
      const reply = await connection
        .request('eth_blockNumber', [], this.#settings.health.probeTimeoutMs)
        .catch((error: unknown) => {
          // The probe waits behind a large answer the node is still sending, or behind large
          // requests it is still answering (a slow link): the node is busy with this socket, not
          // failing. Its calls meanwhile time out and go elsewhere.
          if (error instanceof UpstreamFailure && error.code === 'EVMUX_TIMEOUT' && connection.busySince(mark)) return undefined;
          // Its socket closed for another call's answer over limits.maxAnswerBytes: nothing about
          // the node. (An eth_blockNumber answer over it is: the node is broken.)
          if (error instanceof UpstreamFailure && !error.blamesNode && error.code !== 'EVMUX_ANSWER_TOO_LARGE') return undefined;
          throw error;
        })
        .finally(() => connection.releaseMark(mark));
      if (reply === undefined) {
        this.#logger.debug('probe held up behind a large answer or large requests, or its socket closed for one: not counted');
        return;
      }
      if (reply.error) throw new Error(reply.error.message);
      const head = quantity(replyResult(reply));
      if (head === undefined) throw new Error('eth_blockNumber returned garbage');
      // The newHeads stream is authoritative when it runs; probes cover nodes whose stream is quiet.
      this.#headLearnedAt = performance.now();
      this.#noteProbedHead(head);
      this.#probeFailures = 0;
      this.#probeSuccesses++;
      // The very first probe brings a node up at once, and so does the first after its sockets came
      // back from closing (a network blip, a provider's load balancer: calls wait 1 s for a node,
      // and a second probe a probe interval later came just after); after probes failed it must
      // pass several in a row.
      if (!this.#healthy && (this.#neverUp || this.#downForSockets || this.#probeSuccesses >= this.#settings.health.recoveryThreshold)) {
        this.#setHealthy(true, 'probes passing');
      }
    } catch (error) {
      // With no socket open, why the sockets closed or cannot connect says more than the probe.
      if (this.connected) this.#noteError(`probe failed: ${(error as Error).message}`);
      this.#probeSuccesses = 0;
      this.#probeFailures++;
      if (this.#probeFailures >= this.#settings.health.failureThreshold) {
        this.#downForSockets = false;
        if (this.#healthy) this.#setHealthy(false, `probe failed: ${(error as Error).message}`);
      }
    } finally {
      this.#probing = false;
    }
  }

  /** A socket reached a node of another chain (ChainGuard.checkSocket): logged once per reason, shown in /status. */
  #noteWrongChain(reason: string): void {
    if (this.#wrongChain !== reason) this.#logger.error({ reason }, 'upstream serves another chain: it takes no traffic');
    this.#wrongChain = reason;
  }

  #setHealthy(healthy: boolean, reason: string): void {
    if (this.#healthy === healthy) return;
    this.#healthy = healthy;
    if (healthy) {
      this.#neverUp = false;
      this.#downForSockets = false;
    }
    if (!healthy) this.#probeSuccesses = 0;
    this.#logger[healthy ? 'info' : 'warn']({ reason }, healthy ? 'upstream up' : 'upstream down');
    this.emit('state');
  }
}

/** One call holding a slot on its node: settles the node's bookkeeping, then passes the outcome on. */
class SlotHolder implements ReplySink {
  readonly #started = performance.now();
  readonly #settled: (outcome: 'answered' | 'failed' | 'blameless', ms: number) => void;
  readonly #sink: ReplySink;

  constructor(settled: (outcome: 'answered' | 'failed' | 'blameless', ms: number) => void, sink: ReplySink) {
    this.#settled = settled;
    this.#sink = sink;
  }

  /** Which client's call it is: the connection tells a client's call from evmux's own by it. */
  get clientId(): string | undefined {
    return this.#sink.clientId;
  }

  resolve(reply: UpstreamReply): void {
    this.#settled('answered', performance.now() - this.#started);
    this.#sink.resolve(reply);
  }

  reject(error: unknown): void {
    const failure = error instanceof UpstreamFailure ? error : undefined;
    const timedOut = failure?.code === 'EVMUX_TIMEOUT' ? performance.now() - this.#started : 0;
    // A socket that closed under its calls is one failure of the node's, counted once by its close
    // (#onConnectionClose): counted per call, one blip with five calls in flight opened the breaker.
    // So are the calls that found no socket open after it: retried from the node closed beside it,
    // or let out of the queue, on both nodes of a blip they opened the breakers.
    this.#settled(failure !== undefined && (!failure.blamesNode || isSocketGone(failure)) ? 'blameless' : 'failed', timedOut);
    this.#sink.reject(error);
  }
}
