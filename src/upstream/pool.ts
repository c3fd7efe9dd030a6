/**
 * All upstream nodes of the chain. Judges what single nodes cannot judge alone: lag behind the
 * best head and stalls (a head that stopped while others moved), and tells listeners when the set
 * of usable nodes changes.
 */
import { EventEmitter } from 'node:events';
import type { Config } from '../config/schema.js';
import { OversizedClients } from './oversized-clients.js';
import type { Logger } from '../log.js';
import type { Telemetry } from '../telemetry.js';
import { performance } from 'node:perf_hooks';
import { afterReads } from '../runtime/after-reads.js';
import { ChainGuard } from './chain-guard.js';
import { ChainTip } from './chain-tip.js';
import { Upstream, type UpstreamSnapshot } from './upstream.js';

export interface PoolEvents {
  /** the usable set may have changed */
  changed: [];
  /** a node's head rose */
  height: [];
}

export interface PoolSnapshot extends UpstreamSnapshot {
  lag: number | null;
  stalled: boolean;
  usable: boolean;
  /** usable continuously since (ms since the epoch, by the wall clock now) */
  usableSince: number | null;
}

/**
 * How long a call or a subscribe that finds no node serving waits for one before it fails (within
 * its deadline). Sockets closed together come back within milliseconds (a network blip, a provider's
 * load balancer, an answer over limits.maxAnswerBytes on each node); a node down for longer fails
 * the call after this.
 */
export const NODE_WAIT_MS = 1000;

/** How long the head of a node that stopped serving counts (highestSeen). */
const HIGHEST_SEEN_MS = 30_000;
/** While a read waits for a node to have its block, the nodes below it are asked this often. */
const ASK_AGAIN_MS = 200;

export class UpstreamPool extends EventEmitter<PoolEvents> {
  readonly upstreams: readonly Upstream[];
  /** the chain the nodes must serve; its id answers eth_chainId, and its network id net_version, once known */
  readonly chain: ChainGuard;
  /** the tip the nodes' streams announce, and whether a node replaced it at its height */
  readonly tip = new ChainTip();
  readonly #config: Config;
  readonly #logger: Logger;
  readonly #telemetry: Telemetry;
  readonly #usableSince = new Map<Upstream, number>();
  /** when each node that was usable stopped being so (performance.now()); absent while it is usable */
  readonly #unusableSince = new Map<Upstream, number>();
  /** when each node fell behind another healthy node's head (performance.now()); absent while it is not behind */
  readonly #behindSince = new Map<Upstream, number>();
  /** when each usable node was first seen more than maxLagBlocks behind, and asked its head (performance.now()) */
  readonly #lagSeen = new Map<Upstream, number>();
  /** when each usable node was first seen stalled by what was known of its head, and asked it (performance.now()) */
  readonly #stallSeen = new Map<Upstream, number>();
  /** the nodes judged stalled at the last turn */
  readonly #stalled = new Set<Upstream>();
  #usable: readonly Upstream[] = [];
  #serving: readonly Upstream[] = [];
  #bestHead = -1n;
  /** each node's head when it last served, and when: what a node that went away had */
  readonly #servedHeads = new Map<Upstream, { head: bigint; at: number }>();
  #timer: NodeJS.Timeout | undefined;
  #evaluateScheduled = false;
  /** nodes that went down since the last evaluation, taken out of use at once (#withdraw) */
  readonly #withdrawn = new Set<Upstream>();
  /** calls waiting in untilServing, released at close */
  readonly #waiters = new Set<() => void>();
  #closed = false;

  constructor(config: Config, logger: Logger, telemetry: Telemetry) {
    super();
    this.setMaxListeners(0);
    this.#config = config;
    this.#logger = logger;
    this.#telemetry = telemetry;
    this.chain = new ChainGuard(config.chainId === undefined ? undefined : BigInt(config.chainId));
    const oversized = new OversizedClients();
    this.upstreams = config.upstreams.map((upstreamConfig) => new Upstream(upstreamConfig, config, logger, this.chain, oversized));
    for (const upstream of this.upstreams) {
      upstream.on('state', () => {
        if (!upstream.healthy) this.#withdraw(upstream);
        this.#scheduleEvaluate();
      });
      upstream.on('head', (head, previous) => {
        this.tip.note(head, previous);
        if (head.number > this.#bestHead) this.#bestHead = head.number;
        this.#scheduleEvaluate();
      });
      upstream.on('height', (number: bigint) => {
        if (this.#serving.includes(upstream)) this.#servedHeads.set(upstream, { head: number, at: performance.now() });
        // A head from a probe or an answer (no newHeads stream on the node): the best head and
        // evmux_upstream_head follow it at once (a /status read before the evaluation showed a lag
        // of -1, and the metric a block behind); what it makes of the other nodes is judged after
        // the turn's reads, as for stream heads.
        if (upstream.healthy && number > this.#bestHead) this.#bestHead = number;
        this.#telemetry.upstreamHead(upstream.name, number);
        this.#scheduleEvaluate();
        this.emit('height');
      });
    }
  }

  start(): void {
    for (const upstream of this.upstreams) upstream.start();
    this.#timer = setInterval(() => this.#evaluate(), Math.min(1000, this.#config.health.probeIntervalMs));
  }

  get bestHead(): bigint {
    return this.#bestHead;
  }

  /** Fit for traffic: healthy, not lagging, not stalled (nor withdrawn since the last judgment). */
  isUsable(upstream: Upstream): boolean {
    return this.#usableSince.has(upstream) && (this.#withdrawn.size === 0 || !this.#withdrawn.has(upstream));
  }

  /** Since when (performance.now()) the node has been usable without a break; undefined when it is not usable. */
  usableSince(upstream: Upstream): number | undefined {
    return this.isUsable(upstream) ? this.#usableSince.get(upstream) : undefined;
  }

  /** How long ago (ms) a node that was usable stopped being so; undefined while it is usable, or if it never was. */
  awayFor(upstream: Upstream): number | undefined {
    const since = this.isUsable(upstream) ? undefined : this.#unusableSince.get(upstream);
    return since === undefined ? undefined : performance.now() - since;
  }

  /** Usable and continuously so for at least `ms`. */
  usableFor(upstream: Upstream, ms: number): boolean {
    const since = this.usableSince(upstream);
    return since !== undefined && performance.now() - since >= ms;
  }

  /** The usable nodes in config order; the same array until the set changes. */
  usable(): readonly Upstream[] {
    return this.#usable;
  }

  /**
   * The usable nodes that take calls: the primaries, or the fallbacks while no primary is usable.
   * In config order; the same array until the set changes (every call reads it).
   */
  serving(): readonly Upstream[] {
    return this.#serving;
  }

  /**
   * Resolves true once some node serves (at once if one does), false if none does by `until` (on
   * the performance.now() clock) or the pool closes. For calls that arrive in a moment when every
   * node's socket is down and coming back.
   */
  untilServing(until: number): Promise<boolean> {
    return this.#until(() => this.#serving.length > 0, until);
  }

  /** Resolves true once `upstream` is usable (at once if it is), false at `until` or at close. */
  untilUsable(upstream: Upstream, until: number): Promise<boolean> {
    return this.#until(() => this.isUsable(upstream), until);
  }

  /**
   * The highest head of the serving nodes and of those that served in the last HIGHEST_SEEN_MS
   * (a node that went away: a block up to its head exists, and a node that lacks it is behind). Not
   * a node that never served (a fallback ahead of the primaries), nor one back with a lower head
   * (restarted at genesis, reverted): it counts with the head it has now.
   */
  get highestSeen(): bigint {
    let highest = -1n;
    for (const upstream of this.#serving) if (upstream.headNumber > highest) highest = upstream.headNumber;
    const now = performance.now();
    for (const [upstream, served] of this.#servedHeads) {
      if (served.head > highest && now - served.at <= HIGHEST_SEEN_MS && !this.#serving.includes(upstream)) highest = served.head;
    }
    return highest;
  }

  /**
   * Resolves true once a serving node's head is at `number` or past it, false at `until` (on the
   * performance.now() clock) or when the pool closes. For reads of a block that only a node that
   * went away had: the others have it within a block time.
   */
  untilHead(number: bigint, until: number): Promise<boolean> {
    // What evmux knows of a node's head can be a probe interval old: the nodes below it are asked
    // now, and again while the wait lasts.
    const ask = (): void => {
      for (const upstream of this.#serving) if (upstream.headNumber < number) upstream.refreshHead();
    };
    return this.#until(() => this.#serving.some((upstream) => upstream.headNumber >= number), until, ask);
  }

  /**
   * Resolves with `condition()` once it holds (checked as nodes come and go and heads rise), at
   * `until`, or at close. `ask`, if given, is called at once and every ASK_AGAIN_MS meanwhile.
   */
  #until(condition: () => boolean, until: number, ask?: () => void): Promise<boolean> {
    const wait = until - performance.now();
    if (condition() || wait <= 0 || this.#closed) return Promise.resolve(condition());
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        clearInterval(asking);
        this.off('changed', onChanged);
        this.off('height', onChanged);
        this.#waiters.delete(done);
        resolve(condition());
      };
      const onChanged = (): void => {
        if (condition()) done();
      };
      const timer = setTimeout(done, wait);
      const asking = ask === undefined ? undefined : setInterval(ask, ASK_AGAIN_MS);
      ask?.();
      this.on('changed', onChanged);
      this.on('height', onChanged);
      this.#waiters.add(done);
    });
  }

  byName(name: string): Upstream | undefined {
    return this.upstreams.find((upstream) => upstream.name === name);
  }

  indexOf(upstream: Upstream): number {
    return this.upstreams.indexOf(upstream);
  }

  snapshot(): PoolSnapshot[] {
    return this.upstreams.map((upstream) => ({
      ...upstream.snapshot(),
      lag: upstream.headNumber >= 0n && this.#bestHead >= 0n ? Number(this.#bestHead - upstream.headNumber) : null,
      stalled: this.#stalled.has(upstream),
      usable: this.#usableSince.has(upstream),
      usableSince: wallTimeOf(this.#usableSince.get(upstream)),
    }));
  }

  close(): void {
    this.#closed = true;
    for (const done of [...this.#waiters]) done();
    clearInterval(this.#timer);
    for (const upstream of this.upstreams) upstream.close();
  }

  #lag(upstream: Upstream): bigint {
    if (upstream.headNumber < 0n || this.#bestHead < 0n) return 0n;
    return this.#bestHead - upstream.headNumber;
  }

  /**
   * More than maxLagBlocks behind the best head, by what the node itself said last. A usable node
   * is first asked its head (refreshHead): it is judged lagging once an answer learned after that
   * says so too, or the probe timeout passes without one. A node known by its probes only (no
   * newHeads stream on it) is a probe interval behind what it has; after evmux itself paused, the
   * node with a stream read a backlog of heads while the others' heads were seconds old, and every
   * other node was judged lagging, its clients moved, until its next probe.
   */
  #isLagging(upstream: Upstream): boolean {
    if (this.#lag(upstream) <= BigInt(this.#config.health.maxLagBlocks)) {
      this.#lagSeen.delete(upstream);
      return false;
    }
    return this.#stillSo(upstream, this.#lagSeen, performance.now());
  }

  /**
   * Its head has not moved for stallMs, and for as long another node has been ahead of it. Timed
   * from when it fell behind, not from its own last head: after a quiet spell longer than stallMs
   * (mainnet's missed slots leave 24 s), every node but the first to get the next block was taken
   * for stalled the moment that node got it, and its sessions moved away and back.
   *
   * A usable node is first asked its head, as for lag: a node known by its probes only is behind
   * the node with a stream between probes, and with probes further apart than stallMs the nodes
   * that went on were judged stalled while a node held back kept its stream.
   */
  #isStalled(upstream: Upstream): boolean {
    const behindSince = this.#behindSince.get(upstream);
    const stallMs = this.#config.health.stallMs;
    const now = performance.now();
    if (behindSince === undefined || now - upstream.headChangedAt < stallMs || now - behindSince < stallMs) {
      this.#stallSeen.delete(upstream);
      return false;
    }
    return this.#stillSo(upstream, this.#stallSeen, now);
  }

  /**
   * What its known head says of a node, judged: at once for a node out of use; for a usable one,
   * once an answer learned after it was asked its head (refreshHead, at the first sight, noted in
   * `seen`) says so too, or the probe timeout passes without one.
   */
  #stillSo(upstream: Upstream, seen: Map<Upstream, number>, now: number): boolean {
    if (!this.#usableSince.has(upstream)) return true;
    const asked = seen.get(upstream);
    if (asked === undefined) {
      seen.set(upstream, now);
      upstream.refreshHead();
      return false;
    }
    return upstream.headLearnedAt > asked || now - asked > this.#config.health.probeTimeoutMs;
  }

  /**
   * While a serving node's head has not moved for stallMs, the serving nodes whose head was last
   * heard of stallMs ago or more are asked it. Lag and stall are judged against another node ahead,
   * and with probes further apart than stallMs none was known ahead after a quiet spell: the node
   * with the stream was held back, the others went on unseen, and the stream waited a probe
   * interval. (With probes within stallMs no head is that old, and nothing is asked.)
   */
  #askStaleHeads(): void {
    const stallMs = this.#config.health.stallMs;
    const now = performance.now();
    if (!this.#serving.some((upstream) => now - upstream.headChangedAt >= stallMs)) return;
    for (const upstream of this.#serving) if (now - upstream.headLearnedAt >= stallMs) upstream.refreshHead();
  }

  /** Notes which nodes are behind `best`, the highest healthy node's head now, and since when. */
  #noteBehind(best: bigint): void {
    const now = performance.now();
    for (const upstream of this.upstreams) {
      // No head known (down, reconnecting, on another chain): nothing has stopped moving.
      const behind = upstream.headNumber >= 0n && upstream.headNumber < best;
      if (!behind) this.#behindSince.delete(upstream);
      else if (!this.#behindSince.has(upstream)) this.#behindSince.set(upstream, now);
    }
  }

  /**
   * Judged after the turn's reads (afterReads), not in a microtask after the first node's: evmux
   * back from a pause reads each node's backlog of heads in turn, and lockstep nodes judged between
   * two backlogs were "lagging" by the first one's.
   */
  #scheduleEvaluate(): void {
    if (this.#evaluateScheduled) return;
    this.#evaluateScheduled = true;
    afterReads(() => {
      this.#evaluateScheduled = false;
      this.#evaluate();
    });
  }

  /**
   * A node that went down (its sockets closed, its breaker opened) is out of use from now on (the
   * lists, isUsable), though it is judged (logged, 'changed') after the turn's reads with the rest:
   * the calls its close failed are retried before that, and with both nodes of a blip still
   * serving, their retries went to the node closed beside it, failed as not connected, and used up
   * their attempts; filters went to it too. The evaluation judges it anew: a node down only for a
   * moment within the turn (a 'state' seen between its call socket closing for an oversized answer
   * and its reopening grace) is back, where, left out until the next change, it took no call for good.
   */
  #withdraw(upstream: Upstream): void {
    if (!this.#usable.includes(upstream)) return;
    this.#withdrawn.add(upstream);
    if (!this.#unusableSince.has(upstream)) this.#unusableSince.set(upstream, performance.now());
    this.#setServing(this.#usable.filter((other) => other !== upstream));
  }

  #setServing(usable: readonly Upstream[]): void {
    this.#usable = usable;
    const primaries = usable.filter((upstream) => upstream.role === 'primary');
    this.#serving = primaries.length > 0 ? primaries : usable;
  }

  #evaluate(): void {
    // Closing: evmux is leaving its nodes, none of which went down (nothing to judge or log).
    if (this.#closed) return;
    // Best head among healthy nodes only: a dead node's old head must not define lag.
    let best = -1n;
    for (const upstream of this.upstreams) {
      if (upstream.healthy && upstream.headNumber > best) best = upstream.headNumber;
      this.#telemetry.upstreamHead(upstream.name, upstream.headNumber >= 0n ? upstream.headNumber : null);
    }
    if (best >= 0n) this.#bestHead = best;
    this.#noteBehind(best);
    this.#askStaleHeads();
    let changed = false;
    for (const upstream of this.upstreams) {
      const lagging = this.#isLagging(upstream);
      const stalled = this.#isStalled(upstream);
      if (stalled) this.#stalled.add(upstream);
      else this.#stalled.delete(upstream);
      const usable = upstream.healthy && !lagging && !stalled;
      // A node withdrawn but judged usable (down only for a moment within the turn) never left.
      if (usable) this.#unusableSince.delete(upstream);
      if (usable !== this.#usableSince.has(upstream)) {
        changed = true;
        if (usable) this.#usableSince.set(upstream, performance.now());
        else this.#usableSince.delete(upstream);
        // Withdrawn in the turn before (#withdraw): it left then.
        if (!usable && !this.#unusableSince.has(upstream)) this.#unusableSince.set(upstream, performance.now());
        this.#telemetry.upstreamState(upstream.name, usable);
        this.#logger[usable ? 'info' : 'warn'](
          { upstream: upstream.name, healthy: upstream.healthy, lagging, stalled, lag: Number(this.#lag(upstream)) },
          usable ? 'upstream usable' : 'upstream not usable',
        );
      }
    }
    if (changed || this.#withdrawn.size > 0) this.#setServing(this.upstreams.filter((upstream) => this.#usableSince.has(upstream)));
    this.#withdrawn.clear();
    // A serving node's head as it is now, lowered too (reverted, or back from a restart): what it
    // leaves behind should it go away. A closed socket's -1 is not a head.
    const now = performance.now();
    for (const upstream of this.#serving) if (upstream.headNumber >= 0n) this.#servedHeads.set(upstream, { head: upstream.headNumber, at: now });
    if (changed) this.emit('changed');
  }
}

/** A performance.now() time as ms since the epoch by the wall clock now (for /status); null for none. */
function wallTimeOf(at: number | undefined): number | null {
  return at === undefined ? null : Math.round(Date.now() - (performance.now() - at));
}
