/**
 * Client subscriptions: validation and limits, one topic per (upstream, filter) with one upstream
 * subscription however many clients hold it, ids derived from the filter, and moving clients to
 * the upstream the ring names for their session whenever the set of usable upstreams changes
 * (failover, and return after hold-down). Moves are make-before-break: the new topic subscribes
 * upstream and replays before the old one is released. A watchdog fails over the subscriptions of
 * a node whose newHeads stream went silent while its chain moved on, which the pool cannot see.
 */
import { performance } from 'node:perf_hooks';
import type { Config } from '../config/schema.js';
import { LimitExceededError, UpstreamUnavailableError } from '../jsonrpc/errors.js';
import type { Logger } from '../log.js';
import type { Telemetry } from '../telemetry.js';
import type { TrackedHead } from '../upstream/head.js';
import { NODE_WAIT_MS, type UpstreamPool } from '../upstream/pool.js';
import type { Upstream } from '../upstream/upstream.js';
import { REFUSAL_MS, type SessionAffinity } from './affinity.js';
import { FilterShares } from './filter-shares.js';
import type { ClientSubscription, Group, Publish, Subscriber } from './group.js';
import { HeadFeed, type HeadListener } from './head-feed.js';
import { HeadTopic } from './head-topic.js';
import { LogsTopic } from './logs-topic.js';
import { MoveLog } from './move-log.js';
import { PassthroughTopic } from './passthrough-topic.js';
import { StreamCalls } from './stream-calls.js';
import { StreamRegistry } from './stream-registry.js';
import { SyncingTopic } from './syncing-topic.js';
import type { UpstreamStream } from './upstream-stream.js';
import { subscriptionId } from './subscription-id.js';
import { STATUS_LIST_LIMIT, subscriptionStatus, type SubscriptionStatus } from './subscription-status.js';
import { parseSubscription, type SubscriptionSpec } from './subscription-params.js';
import type { GroupState, Topic, TopicDeps } from './topic.js';
import { ownWorkSlots } from '../runtime/slots.js';
import { WarningThrottle } from '../runtime/warning-throttle.js';
import { addressBlock } from '../server/address-block.js';

const REBALANCE_INTERVAL_MS = 1000;
/**
 * Topics a rebalance pass moves before it lets the event loop run. Moving a distinct logs filter
 * costs ~0.15 ms (a topic, a stream, copies of its cursor and log book): one pass over the default
 * subscriptions.maxLogFiltersPerUpstream of 10,000 held every client's calls and heads for 1–3 s.
 */
const REBALANCE_SLICE_TOPICS = 200;
/**
 * Tries more, after this pause, for a subscribe whose node failed under it (its socket closed or
 * changed, or it stopped answering): asked of the node the ring names then, another if that one went
 * down, the same once its subscriptions have a socket again.
 */
const SUBSCRIBE_RETRIES = 2;
const SUBSCRIBE_RETRY_MS = 100;
/** A pass-through move waits for the new node's subscription this many tries, this far apart (#moveWhenLive). */
const MOVE_TRIES = 4;
const MOVE_RETRY_MS = 250;

/** Keeps a silent node's newHeads stream subscribed so its recovery is seen. */
const WATCHER: HeadListener = { onHead() {}, onResumed() {} };

/** How many of its unsubscribed ids a connection is not given again (SubscriptionManager#retire). */
const RETIRED_IDS = 16;

/** A filter as a log line shows it: its first 200 characters (one may be 45 KB). */
const shortFilter = (key: string): string => (key.length > 200 ? `${key.slice(0, 200)}…` : key);

/** What a client is told when a node could not make its subscription: `reason` is the node's stream's. */
const cannotSubscribe = (spec: SubscriptionSpec, upstream: Upstream, reason: Error): UpstreamUnavailableError =>
  new UpstreamUnavailableError(`cannot subscribe to ${spec.kind} on upstream ${upstream.name}: ${reason.message}`);

export class SubscriptionManager {
  readonly #pool: UpstreamPool;
  readonly #affinity: SessionAffinity;
  readonly #config: Config;
  readonly #telemetry: Telemetry;
  readonly #logger: Logger;
  readonly #moveLog: MoveLog;
  readonly #registry: StreamRegistry;
  readonly #feeds = new Map<Upstream, HeadFeed>();
  readonly #calls = new Map<Upstream, StreamCalls>();
  readonly #topics = new Map<Upstream, Map<string, Topic>>();
  /**
   * Per connection, replaced (not grown) on change: a connection holds a handful of subscriptions
   * (at most maxSubscriptionsPerConnection), and an exact-size array costs far less than a Map or
   * a grown array for each of 10,000 connections.
   */
  readonly #bySubscriber = new WeakMap<Subscriber, readonly ClientSubscription[]>();
  /** ids each connection unsubscribed lately (at most RETIRED_IDS): not given to it again */
  readonly #retired = new WeakMap<Subscriber, string[]>();
  readonly #topicDeps: TopicDeps;
  /** subscribe calls per connection that passed the limit check and are not recorded yet */
  readonly #reserved = new WeakMap<Subscriber, number>();
  /** topics with subscribe calls waiting for their upstream subscription */
  readonly #joining = new Map<Topic, number>();
  /** pass-through subscriptions waiting on the old node's live stream for the new node's (#moveWhenLive) */
  readonly #moving = new Set<ClientSubscription>();
  /** #moveWhenLive's pauses between tries */
  readonly #moveTimers = new Set<NodeJS.Timeout>();
  readonly #shares: FilterShares;
  #timer: NodeJS.Timeout | undefined;
  #watchdog: NodeJS.Timeout | undefined;
  #rebalanceQueued = false;
  /** the rebalance pass under way, if one is */
  #rebalancing: Promise<void> | undefined;
  /** a pass was asked for while one was under way: another follows it */
  #rebalanceAgain = false;
  #closed = false;
  /** the affinity state the last rebalance placed every subscription under */
  #placedUnder: string | undefined;
  /** a subscription joined a topic since the last rebalance (its owner was read before an await) */
  #joinedSince = false;
  /** nodes whose newHeads stream went silent, and since when */
  readonly #silent = new Map<Upstream, number>();
  readonly #warnings: WarningThrottle;

  constructor(pool: UpstreamPool, affinity: SessionAffinity, publish: Publish, config: Config, telemetry: Telemetry, logger: Logger) {
    this.#pool = pool;
    this.#affinity = affinity;
    this.#config = config;
    this.#telemetry = telemetry;
    this.#logger = logger.child({ component: 'subscriptions' });
    this.#moveLog = new MoveLog(this.#logger);
    this.#shares = new FilterShares(config.limits.maxLogFiltersPerIp);
    const warnings = new WarningThrottle(this.#logger);
    this.#warnings = warnings;
    this.#registry = new StreamRegistry(pool, {
      telemetry,
      warnings,
      graceMs: config.subscriptions.gracePeriodMs,
      timeoutMs: config.requestTimeoutMs,
      onRefused: (stream, error) => this.#refused(stream, error),
    });
    for (const upstream of pool.upstreams) this.#topics.set(upstream, new Map());
    this.#topicDeps = {
      registry: this.#registry,
      headFeed: (upstream) => this.#feed(upstream),
      calls: (upstream) => this.#callsOf(upstream),
      start: (subscription) => this.#start(subscription),
      stepsFailing: (topic, error) => this.#stepsFailing(topic, error),
      publish,
      telemetry,
      logger: this.#logger,
      warnings,
      replayMaxBlocks: config.subscriptions.replayMaxBlocks,
      replayMaxMs: config.subscriptions.replayMaxMs,
      historyBlocks: config.subscriptions.historyBlocks,
    };
    pool.on('changed', () => this.#queueRebalance());
  }

  start(): void {
    // Also catches hold-down expiry, which no event announces.
    this.#timer = setInterval(() => this.#rebalanceIfChanged(), REBALANCE_INTERVAL_MS);
    const every = Math.min(REBALANCE_INTERVAL_MS, Math.max(100, Math.floor(this.#config.health.stallMs / 4)));
    this.#watchdog = setInterval(() => this.#checkFeeds(), every);
  }

  async subscribe(subscriber: Subscriber, params: unknown): Promise<{ id: string; start: () => void }> {
    const { limits } = this.#config;
    const spec = parseSubscription(params, { maxAddresses: limits.maxFilterAddresses, maxTopicsPerPosition: limits.maxFilterTopicsPerPosition });
    const held = this.#bySubscriber.get(subscriber)?.length ?? 0;
    // Subscribes still waiting for their upstream count too: a batch must not slip past the limit.
    const reserved = this.#reserved.get(subscriber) ?? 0;
    if (held + reserved >= limits.maxSubscriptionsPerConnection) {
      throw new LimitExceededError(`subscription limit reached: at most ${limits.maxSubscriptionsPerConnection} per connection (limits.maxSubscriptionsPerConnection)`);
    }
    this.#reserved.set(subscriber, reserved + 1);
    try {
      return await this.#subscribe(subscriber, spec);
    } finally {
      const left = (this.#reserved.get(subscriber) ?? 1) - 1;
      if (left > 0) this.#reserved.set(subscriber, left);
      else this.#reserved.delete(subscriber);
    }
  }

  /**
   * On the node the session's key maps to for this kind. A node that refuses the subscription
   * (answers eth_subscribe with an error) is passed over for the kind from then on, and the next
   * one on the ring is asked, up to every node once.
   */
  async #subscribe(subscriber: Subscriber, spec: SubscriptionSpec): Promise<{ id: string; start: () => void }> {
    let refusal: Error | undefined;
    let retries = SUBSCRIBE_RETRIES;
    let waited = false;
    for (let asked = 0; asked < this.#pool.upstreams.length; ) {
      let upstream = this.#affinity.owner(subscriber.sessionKey, spec);
      // Every usable node refused it lately (none is asked again for REFUSAL_MS): the node's reason.
      if (upstream === undefined) refusal ??= this.#refusal(spec);
      // No node usable: wait for one, once, as plain calls do (sockets closed together come back).
      if (upstream === undefined && !waited && refusal === undefined) {
        waited = true;
        if (await this.#pool.untilServing(performance.now() + NODE_WAIT_MS)) upstream = this.#affinity.owner(subscriber.sessionKey, spec);
      }
      if (upstream === undefined || subscriber.closed) break;
      const started = performance.now();
      try {
        return await this.#subscribeOn(upstream, subscriber, spec);
      } catch (error) {
        if (this.#affinity.refuses(upstream, spec)) {
          refusal = error as Error;
          asked++;
          continue;
        }
        // A node failing under the subscribe is no answer to the client while another can serve it:
        // asked again at once when it failed fast (a socket closed or changed), or of another node
        // once the ring names one; a node still named that let the subscribe time out is not waited
        // for again.
        if (!(error instanceof UpstreamUnavailableError) || subscriber.closed || retries-- === 0) throw error;
        const timedOut = performance.now() - started >= this.#config.requestTimeoutMs;
        await new Promise((resolve) => setTimeout(resolve, SUBSCRIBE_RETRY_MS));
        if (timedOut && this.#affinity.owner(subscriber.sessionKey, spec) === upstream) throw error;
      }
    }
    throw refusal ?? new UpstreamUnavailableError('no upstream available for subscriptions');
  }

  /** When every usable node refused this subscription lately: what the client they refused was told; else undefined. */
  #refusal(spec: SubscriptionSpec): Error | undefined {
    const refusal = this.#affinity.refusal(spec);
    return refusal && cannotSubscribe(spec, refusal.upstream, refusal.reason);
  }

  async #subscribeOn(upstream: Upstream, subscriber: Subscriber, spec: SubscriptionSpec): Promise<{ id: string; start: () => void }> {
    this.#checkFilterRoom(upstream, spec);
    this.#claimShare(subscriber, spec);
    const topic = this.#topic(upstream, spec);
    // Held while the upstream subscribe is in flight, so a rebalance or another client's
    // unsubscribe meanwhile does not release the topic this client is about to join.
    this.#joining.set(topic, (this.#joining.get(topic) ?? 0) + 1);
    let startHead: TrackedHead | undefined;
    try {
      await topic.ready();
      startHead = await topic.startHead();
    } catch (error) {
      this.#leaveJoining(topic);
      this.#releaseIfIdle(topic);
      this.#releaseShare(subscriber, spec);
      throw cannotSubscribe(spec, upstream, error as Error);
    }
    this.#leaveJoining(topic);
    if (subscriber.closed) {
      this.#releaseIfIdle(topic);
      this.#releaseShare(subscriber, spec);
      throw new UpstreamUnavailableError('connection closed');
    }
    const held = this.#bySubscriber.get(subscriber) ?? [];
    const retired = this.#retired.get(subscriber);
    let variant = 0;
    let id = subscriptionId(spec.fingerprint, variant);
    while (held.some((other) => other.id === id) || retired?.includes(id) === true) id = subscriptionId(spec.fingerprint, ++variant);
    // The topic's spec, not this request's parse of it: equal by fingerprint, and one copy for all
    // its clients instead of a filter object, arrays and strings per client.
    const subscription: ClientSubscription = { id, variant, spec: topic.spec, subscriber, group: undefined, started: false };
    if (startHead !== undefined) subscription.startHead = startHead;
    this.#bySubscriber.set(subscriber, [...held, subscription]);
    topic.join(subscription);
    this.#joinedSince = true;
    this.#telemetry.clientSubscriptionsChanged(spec.kind, 1);
    return { id: subscription.id, start: () => this.#start(subscription) };
  }

  unsubscribe(subscriber: Subscriber, id: string): boolean {
    const held = this.#bySubscriber.get(subscriber) ?? [];
    const subscription = held.find((candidate) => candidate.id === id);
    if (subscription === undefined) return false;
    if (held.length === 1) this.#bySubscriber.delete(subscriber);
    else this.#bySubscriber.set(subscriber, held.filter((candidate) => candidate !== subscription));
    this.#remove(subscription);
    this.#retire(subscriber, id);
    return true;
  }

  /**
   * An id a connection unsubscribed is not its id again for a while: a subscription to the same
   * filter made next on that connection gets another variant. Otherwise it got the same id, and an
   * unsubscribe of the old one sent again (a client library's cleanup repeated) ended the new one.
   */
  #retire(subscriber: Subscriber, id: string): void {
    const retired = this.#retired.get(subscriber) ?? [];
    if (retired.length === 0) this.#retired.set(subscriber, retired);
    retired.push(id);
    if (retired.length > RETIRED_IDS) retired.shift();
  }

  releaseSession(subscriber: Subscriber): void {
    const held = this.#bySubscriber.get(subscriber);
    if (held === undefined) return;
    this.#bySubscriber.delete(subscriber);
    for (const subscription of held) this.#remove(subscription);
  }

  /** Rebalance now, or right after the pass under way (one pass at a time). */
  #rebalance(): void {
    if (this.#rebalancing !== undefined) {
      this.#rebalanceAgain = true;
      return;
    }
    this.#rebalancing = this.#rebalancePasses()
      // A pass that throws is a bug: logged, and the periodic check tries again.
      .catch((error: unknown) => {
        this.#placedUnder = undefined;
        this.#logger.error({ err: error }, 'rebalance pass failed');
      })
      .finally(() => (this.#rebalancing = undefined));
  }

  async #rebalancePasses(): Promise<void> {
    do {
      this.#rebalanceAgain = false;
      await this.#rebalancePass();
    } while (this.#rebalanceAgain && !this.#closed);
  }

  /**
   * Move every subscription whose session the ring now assigns to another usable upstream,
   * REBALANCE_SLICE_TOPICS topics at a time. What changes between slices is seen: a topic released
   * meanwhile is passed over, and owners are asked anew once the affinity changed (which asks for
   * another pass, for the topics done before).
   */
  async #rebalancePass(): Promise<void> {
    let under = this.#affinity.state();
    this.#placedUnder = under;
    this.#joinedSince = false;
    // Owners by filter, then key: a node that refused a filter owns no keys for it.
    const owners = new Map<string, Map<string, Upstream | undefined>>();
    const ownerOf = (key: string, spec: SubscriptionSpec): Upstream | undefined => {
      let ofFilter = owners.get(spec.fingerprint);
      if (ofFilter === undefined) owners.set(spec.fingerprint, (ofFilter = new Map()));
      if (!ofFilter.has(key)) ofFilter.set(key, this.#affinity.owner(key, spec));
      return ofFilter.get(key);
    };
    let done = 0;
    for (const [upstream, topics] of this.#topics) {
      for (const topic of [...topics.values()]) {
        if (++done % REBALANCE_SLICE_TOPICS === 0) {
          await new Promise((resolve) => setImmediate(resolve));
          if (this.#closed) return;
          if (this.#affinity.state() !== under) {
            under = this.#affinity.state();
            owners.clear();
          }
        }
        if (topics.get(topic.spec.fingerprint) !== topic) continue;
        for (const group of [...topic.groups]) {
          const moves = new Map<Upstream, ClientSubscription[]>();
          for (const member of group.members) {
            const owner = ownerOf(member.subscriber.sessionKey, topic.spec);
            if (owner === undefined || owner === upstream) continue;
            let list = moves.get(owner);
            if (list === undefined) moves.set(owner, (list = []));
            list.push(member);
          }
          for (const [target, members] of moves) {
            const destination = this.#topic(target, topic.spec);
            if (topic instanceof PassthroughTopic && topic.live) this.#moveWhenLive(topic, group, destination, members);
            else this.#moved(topic, destination, members, { ...(group.cursor && { cursor: group.cursor.clone() }), ...(group.logBook && { logBook: group.logBook.clone() }) });
          }
        }
        topic.dropEmptyGroups();
        this.#releaseIfIdle(topic);
      }
    }
  }

  #moved(from: Topic, to: Topic, members: ClientSubscription[], state: GroupState): void {
    to.adopt(members, state, from);
    this.#telemetry.failover(from.spec.kind);
    this.#moveLog.note(from.spec.kind, from.upstream.name, to.upstream.name, members.length);
  }

  /**
   * Make before break for a stream with nothing to replay (pending transactions): the clients stay
   * on the old node's live stream until the new node's subscribe is answered, then move, those
   * still on the old group and still owned by the new node. It is asked MOVE_TRIES times (a node
   * back a moment ago may not have its subscription socket yet); should it fail every time, they
   * move all the same, as on any failover, and the new topic keeps asking.
   */
  #moveWhenLive(from: PassthroughTopic, group: Group, to: Topic, members: ClientSubscription[]): void {
    const waiting = members.filter((member) => !this.#moving.has(member));
    if (waiting.length === 0) return;
    for (const member of waiting) this.#moving.add(member);
    this.#joining.set(to, (this.#joining.get(to) ?? 0) + 1);
    const settle = (): void => {
      for (const member of waiting) this.#moving.delete(member);
      this.#leaveJoining(to);
      const left = waiting.filter((member) => member.group === group);
      const still = left.filter((member) => this.#affinity.owner(member.subscriber.sessionKey, from.spec) === to.upstream);
      if (still.length > 0) {
        this.#moved(from, to, still, {});
        if (to instanceof PassthroughTopic) to.overlapWith(from);
      }
      // Their owner changed while they waited: a rebalance takes them there.
      if (still.length < left.length) this.#queueRebalance();
      from.dropEmptyGroups();
      this.#releaseIfIdle(from);
      this.#releaseIfIdle(to);
    };
    const tryReady = (left: number): void => {
      to.ready().then(settle, () => {
        if (left <= 1) {
          settle();
          return;
        }
        const timer = setTimeout(() => {
          this.#moveTimers.delete(timer);
          tryReady(left - 1);
        }, MOVE_RETRY_MS);
        this.#moveTimers.add(timer);
      });
    };
    tryReady(MOVE_TRIES);
  }

  /** Per upstream: totals per kind, and the `listLimit` topics and streams with the most clients. */
  status(listLimit = STATUS_LIST_LIMIT): SubscriptionStatus[] {
    return this.#pool.upstreams.map((upstream) => {
      const topics = [...(this.#topics.get(upstream)?.values() ?? [])].map((topic) => ({
        kind: topic.spec.kind,
        filter: topic.spec.fingerprint,
        clients: topic.memberCount,
        groups: topic.groups.size,
      }));
      return subscriptionStatus(upstream.name, topics, this.#registry.snapshot(upstream), listLimit, this.#affinity.refusedKinds(upstream));
    });
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    clearInterval(this.#watchdog);
    for (const timer of this.#moveTimers) clearTimeout(timer);
    for (const topics of this.#topics.values()) for (const topic of topics.values()) topic.close();
    this.#registry.close();
  }

  #remove(subscription: ClientSubscription): void {
    const group = subscription.group;
    this.#telemetry.clientSubscriptionsChanged(subscription.spec.kind, -1);
    this.#releaseShare(subscription.subscriber, subscription.spec);
    if (group === undefined) return;
    const topic = this.#topicOf(subscription);
    if (topic === undefined) {
      group.remove(subscription);
      return;
    }
    topic.leave(subscription);
    this.#releaseIfIdle(topic);
  }

  /** The subscribe reply is out: start it in the topic that holds it now (a failover may have moved it). */
  #start(subscription: ClientSubscription): void {
    this.#topicOf(subscription)?.start(subscription);
  }

  #topicOf(subscription: ClientSubscription): Topic | undefined {
    for (const topics of this.#topics.values()) {
      const topic = topics.get(subscription.spec.fingerprint);
      if (topic !== undefined && subscription.group !== undefined && topic.groups.has(subscription.group)) return topic;
    }
    return undefined;
  }

  #topic(upstream: Upstream, spec: SubscriptionSpec): Topic {
    const topics = this.#topics.get(upstream)!;
    let topic = topics.get(spec.fingerprint);
    if (topic === undefined) {
      topic =
        spec.kind === 'newHeads'
          ? new HeadTopic(upstream, spec, this.#topicDeps)
          : spec.kind === 'logs'
            ? new LogsTopic(upstream, spec, this.#topicDeps)
            : spec.kind === 'syncing'
              ? new SyncingTopic(upstream, spec, this.#topicDeps)
              : new PassthroughTopic(upstream, spec, this.#topicDeps);
      topic.attach();
      topics.set(spec.fingerprint, topic);
    }
    return topic;
  }

  /**
   * A new distinct logs filter needs room on the node; one it already has (or lingers) does not,
   * whatever block numbers bound it (they are evmux's to apply: one eth_subscribe carries them all).
   */
  #checkFilterRoom(upstream: Upstream, spec: SubscriptionSpec): void {
    if (spec.kind !== 'logs' || this.#registry.has(upstream, spec.streamKey)) return;
    const max = this.#config.subscriptions.maxLogFiltersPerUpstream;
    if (this.#registry.logsStreams(upstream) < max) return;
    this.#telemetry.clientRejected('log_filters');
    throw new LimitExceededError(
      `too many distinct logs filters on this node: at most ${max} (subscriptions.maxLogFiltersPerUpstream); subscribe to a filter already in use or try again later`,
    );
  }

  /** A logs filter counts against its client address's share, held until its subscription goes. */
  #claimShare(subscriber: Subscriber, spec: SubscriptionSpec): void {
    if (spec.kind !== 'logs') return;
    const block = this.#blockOf(subscriber);
    if (this.#shares.claim(block, spec.fingerprint)) return;
    this.#telemetry.clientRejected('log_filters_per_ip');
    const max = this.#config.limits.maxLogFiltersPerIp;
    throw new LimitExceededError(`too many distinct logs filters from ${block}: at most ${max} (limits.maxLogFiltersPerIp); subscribe to one it already holds, or unsubscribe one first`);
  }

  #releaseShare(subscriber: Subscriber, spec: SubscriptionSpec): void {
    if (spec.kind === 'logs') this.#shares.release(this.#blockOf(subscriber), spec.fingerprint);
  }

  /** What limits.maxLogFiltersPerIp counts the subscriber's address as (address-block.ts). */
  #blockOf(subscriber: Subscriber): string {
    return addressBlock(subscriber.ip, this.#config.limits.ipv6PrefixLength);
  }

  #leaveJoining(topic: Topic): void {
    const count = (this.#joining.get(topic) ?? 1) - 1;
    if (count > 0) this.#joining.set(topic, count);
    else this.#joining.delete(topic);
  }

  #releaseIfIdle(topic: Topic): void {
    if (topic.memberCount > 0 || this.#joining.has(topic)) return;
    const topics = this.#topics.get(topic.upstream)!;
    if (topics.get(topic.spec.fingerprint) === topic) topics.delete(topic.spec.fingerprint);
    // The upstream streams it used stay for the grace period in case clients come back.
    topic.close();
  }

  #feed(upstream: Upstream): HeadFeed {
    let feed = this.#feeds.get(upstream);
    if (feed === undefined) {
      feed = new HeadFeed(upstream, this.#registry, this.#warnings);
      this.#feeds.set(upstream, feed);
    }
    return feed;
  }

  /**
   * The node answered eth_subscribe with an error: it will not carry this stream now (a cap on
   * subscriptions, a kind it does not serve, a filter or flag it does not take). Its clients go to
   * the next node on the ring for REFUSAL_MS; the node's other streams stay. A refused newHeads
   * stream refuses every logs stream too, whose topics need one.
   */
  #refused(stream: UpstreamStream, error: Error): void {
    const { upstream, kind } = stream;
    const reason = stream.notLive();
    this.#affinity.refused(upstream, { streamKey: stream.key }, kind, reason);
    if (kind === 'newHeads') this.#affinity.refused(upstream, { kind: 'logs' }, 'logs', reason);
    this.#warnings.warn(
      { upstream: upstream.name, kind, filter: shortFilter(stream.key), err: error.message, forMs: REFUSAL_MS },
      'upstream refused a subscription: its clients go to other nodes for a while',
    );
    this.#queueRebalance();
  }

  /**
   * A topic's steps keep failing on a node the pool finds usable: the node fails a call the stream
   * needs (a provider's rate limit on eth_getLogs or eth_getBlockByNumber, a backend that holds
   * them) while its heads go on, and the stream waited on it for good. Its clients go to another
   * node for the filter for REFUSAL_MS (a failover: what they missed is replayed there); with none
   * to go to, they stay and it keeps trying.
   */
  #stepsFailing(topic: Topic, error: Error): void {
    const { upstream, spec } = topic;
    if (this.#closed || !this.#pool.isUsable(upstream) || this.#affinity.failsStream(upstream, spec)) return;
    this.#affinity.streamFailing(upstream, spec);
    this.#warnings.warn(
      { upstream: upstream.name, kind: spec.kind, filter: shortFilter(spec.streamKey), err: error.message, forMs: REFUSAL_MS },
      'subscription steps keep failing on this node: its clients go to other nodes for a while',
    );
    this.#queueRebalance();
  }

  /** A node's share of its request slots for stream work: an eighth of maxConcurrency (32 of 256). */
  #callsOf(upstream: Upstream): StreamCalls {
    let calls = this.#calls.get(upstream);
    if (calls === undefined) {
      calls = new StreamCalls(upstream, { concurrency: ownWorkSlots(upstream.maxConcurrency), timeoutMs: this.#config.requestTimeoutMs, telemetry: this.#telemetry });
      this.#calls.set(upstream, calls);
    }
    return calls;
  }

  /**
   * A node's newHeads stream that brought nothing for stallMs while the node itself (probes) or
   * the pool is past its last head: the subscription is dead although the socket is not, or the
   * node does not make it (holds or fails eth_subscribe while it answers calls). Its clients fail
   * over, the stream is made afresh, and the node gets keys again once heads flow (after
   * hold-down, like any returning node).
   */
  #checkFeeds(): void {
    const { stallMs } = this.#config.health;
    for (const [upstream, feed] of this.#feeds) {
      const reference = upstream.headNumber > this.#pool.bestHead ? upstream.headNumber : this.#pool.bestHead;
      const silentFor = feed.silentFor(reference);
      const since = this.#silent.get(upstream);
      if (since === undefined) {
        if (silentFor < stallMs) continue;
        this.#silent.set(upstream, performance.now());
        feed.add(WATCHER);
        feed.restart();
        this.#affinity.setFaulty(upstream, true);
        this.#logger.warn({ upstream: upstream.name, silentMs: silentFor, head: reference.toString() }, 'newHeads stream silent while the chain moves: failing its subscriptions over');
        this.#queueRebalance();
      } else if (silentFor >= stallMs && performance.now() - since >= stallMs) {
        // Still silent a stallMs after its stream was made anew, and its sessions had nowhere to go
        // (one node: a provider's URL, whose load balancer pinned the stream socket to a backend
        // that stopped sending heads while the call socket's went on): a new socket, which may
        // reach another backend. Each stallMs until heads come, so it is never silent for good.
        this.#silent.set(upstream, performance.now());
        this.#logger.warn({ upstream: upstream.name, silentMs: silentFor, head: reference.toString() }, 'newHeads stream still silent while the chain moves: reconnecting its socket');
        upstream.reconnectStreams('newHeads stream silent while the chain moves');
      } else if (feed.lastHeadAt > since && silentFor < stallMs) {
        this.#silent.delete(upstream);
        feed.remove(WATCHER);
        this.#affinity.setFaulty(upstream, false);
        this.#logger.info({ upstream: upstream.name }, 'newHeads stream flowing again');
        this.#queueRebalance();
      }
    }
  }

  /**
   * The periodic pass, skipped when it could move nothing: every subscription was placed by the
   * last pass under the same affinity state, and none joined since. A pass visits every member, so
   * with 10,000 clients it took ~2 ms of the event loop every second for nothing.
   */
  #rebalanceIfChanged(): void {
    if (!this.#joinedSince && this.#affinity.state() === this.#placedUnder) return;
    this.#rebalance();
  }

  #queueRebalance(): void {
    if (this.#rebalanceQueued) return;
    this.#rebalanceQueued = true;
    setImmediate(() => {
      this.#rebalanceQueued = false;
      this.#rebalance();
    });
  }
}
