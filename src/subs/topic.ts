/**
 * One (upstream, normalized filter) pair: its client groups, the serialized queue in which every
 * event for the topic is handled (so notifications stay in order across live traffic, replays and
 * failovers), and what each kind of subscription shares. Kinds subclass it: heads, logs, and
 * pass-through streams without history.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from '../log.js';
import type { Telemetry } from '../telemetry.js';
import { isSocketGone } from '../upstream/errors.js';
import type { TrackedHead } from '../upstream/head.js';
import type { Upstream } from '../upstream/upstream.js';
import type { AdvanceBounds, ChainCursor } from './chain-cursor.js';
import { Group, type ClientSubscription, type Publish } from './group.js';
import type { HeadFeed } from './head-feed.js';
import type { LogBook } from './log-book.js';
import type { StreamCalls } from './stream-calls.js';
import type { StreamRegistry } from './stream-registry.js';
import type { SubscriptionSpec } from './subscription-params.js';
import type { WarningThrottle } from '../runtime/warning-throttle.js';

export interface TopicDeps {
  registry: StreamRegistry;
  headFeed: (upstream: Upstream) => HeadFeed;
  /** the calls stream work makes on an upstream, shared by its topics */
  calls: (upstream: Upstream) => StreamCalls;
  /** start a subscription in the topic that holds it now (a failover may have moved it) */
  start: (subscription: ClientSubscription) => void;
  /**
   * A group of `topic` failed FAILED_STEPS_TO_MOVE steps and catch-ups in a row (its socket going
   * is not counted: the pool judges that): its node fails a call the stream needs.
   */
  stepsFailing: (topic: Topic, error: Error) => void;
  publish: Publish;
  telemetry: Telemetry;
  logger: Logger;
  /** warnings every topic on a node would give for one cause, throttled */
  warnings: WarningThrottle;
  replayMaxBlocks: number;
  replayMaxMs: number;
  historyBlocks: number;
}

export interface GroupState {
  cursor?: ChainCursor<TrackedHead>;
  logBook?: LogBook;
}

const CATCH_UP_RETRY_MS = 1000;
/**
 * Failed steps and catch-ups in a row of a group, with no catch-up done between them, after which
 * its node is reported (TopicDeps.stepsFailing). Tried again each second on the same node, a step
 * its node fails for good (a rate limit, a call it holds) stalled the stream for good while the
 * node's heads went on. A node answering errors is reported within about two seconds of a stall;
 * one holding the calls, after three of them time out (requestTimeoutMs each).
 */
const FAILED_STEPS_TO_MOVE = 3;

export abstract class Topic {
  readonly upstream: Upstream;
  readonly spec: SubscriptionSpec;
  readonly groups = new Set<Group>();
  protected readonly deps: TopicDeps;
  /**
   * Headers and logs from this topic's upstream, shared with the other topics on it; also the
   * head source its cursors walk back over gaps and reorgs with.
   */
  protected readonly calls: StreamCalls;
  #main: Group | undefined;
  #queue: Promise<void> = Promise.resolve();
  #closed = false;
  readonly #retryTimers = new Set<NodeJS.Timeout>();
  readonly #catchUpQueued = new WeakSet<Group>();
  /** per group, its steps and catch-ups that failed since its last catch-up done */
  readonly #failedSteps = new WeakMap<Group, number>();

  constructor(upstream: Upstream, spec: SubscriptionSpec, deps: TopicDeps) {
    this.upstream = upstream;
    this.spec = spec;
    this.deps = deps;
    this.calls = deps.calls(upstream);
  }

  get closed(): boolean {
    return this.#closed;
  }

  get memberCount(): number {
    let count = 0;
    for (const group of this.groups) count += group.size;
    return count;
  }

  /** Attach to the upstream streams this topic needs. */
  abstract attach(): void;
  /** Detach from them (they linger for the grace period). */
  abstract detach(): void;
  /** Resolves once the upstream side is subscribed. */
  abstract ready(): Promise<void>;

  /**
   * Asked for a new subscription once ready(), before its reply: the head its stream starts at
   * (ClientSubscription.startHead); undefined when that is not decided here.
   */
  startHead(): Promise<TrackedHead | undefined> {
    return Promise.resolve(undefined);
  }

  /** The group new subscriptions join has delivered a head: its stream is under way. */
  protected get mainStarted(): boolean {
    return this.#main !== undefined && this.groups.has(this.#main) && this.#main.cursor?.last !== undefined;
  }
  /** Bring a group (new here, or after a stream loss) up to this upstream's head. */
  protected abstract catchUp(group: Group): Promise<void>;
  /** Fresh history state for a brand-new main group. */
  protected abstract freshState(): GroupState;

  /**
   * A new client subscription joins the main group, or, where that cannot take it (admits), the
   * group of those that started at the same head, or a group of its own.
   */
  join(subscription: ClientSubscription): void {
    if (this.#main === undefined || !this.groups.has(this.#main)) {
      this.#main = this.#newGroup(this.freshState());
    }
    const group = this.admits(this.#main, subscription) ? this.#main : this.#startedAlike(subscription);
    (group ?? this.#newGroup(this.freshState())).add(subscription);
  }

  /**
   * A group besides the main one whose members started at the head `subscription` starts at, and
   * that takes it: while the main group replays, those subscribing at one head share one group (a
   * group each cost every head an advance and a publish per subscriber).
   */
  #startedAlike(subscription: ClientSubscription): Group | undefined {
    const hash = subscription.startHead?.hash;
    if (hash === undefined) return undefined;
    for (const group of this.groups) {
      if (group === this.#main) continue;
      const first = group.members.values().next().value;
      if (first?.startHead?.hash === hash && this.admits(group, subscription)) return group;
    }
    return undefined;
  }

  /**
   * The group new subscriptions join is below the node's head, or about to be found so (a catch-up
   * of it queued: moved here, or its stream resumed): it is replaying blocks mined before a
   * subscription made now. Such a subscription is asked the node's head (startHead) and, answered
   * above the group's tip, gets a group of its own (admits).
   */
  protected get mainBehind(): boolean {
    const main = this.#main;
    const tip = main?.cursor?.last;
    if (main === undefined || tip === undefined || !this.groups.has(main)) return false;
    return this.#catchUpQueued.has(main) || this.upstream.headNumber > tip.number;
  }

  /**
   * Whether `group` can take a new subscription; else it gets a group of its own, merged in later
   * (mergeGroups). Not one whose stream is below the head the subscription was answered at: the
   * blocks it has still to deliver were mined before the subscription.
   */
  protected admits(group: Group, subscription: ClientSubscription): boolean {
    const tip = group.cursor?.last;
    const start = subscription.startHead;
    return tip === undefined || start === undefined || tip.number >= start.number;
  }

  /** The subscribe response is out: the subscription starts receiving this topic's notifications. */
  start(subscription: ClientSubscription): void {
    const group = subscription.group;
    if (subscription.started || group === undefined || subscription.subscriber.closed) return;
    subscription.started = true;
    subscription.subscriber.joinTopic(group.topicName(subscription.variant));
  }

  leave(subscription: ClientSubscription): void {
    const group = subscription.group;
    if (group === undefined) return;
    group.remove(subscription);
    if (group.size === 0) this.#dropGroup(group);
  }

  dropEmptyGroups(): void {
    for (const group of [...this.groups]) if (group.size === 0) this.#dropGroup(group);
  }

  /**
   * Clients moved in from another upstream (`from`, the topic they left): a group of their own with
   * their history, then replay.
   */
  adopt(members: ClientSubscription[], state: GroupState, _from?: Topic): Group {
    const group = this.#newGroup(state);
    // With no main group here yet, this one is it: later subscribers share its publishes.
    if (this.#main === undefined || !this.groups.has(this.#main)) this.#main = group;
    for (const member of members) moveMember(member, group);
    this.scheduleCatchUp(group);
    return group;
  }

  /**
   * Move a subscription that has not started to `group`, or to a new group of its own with `state`:
   * a history apart from its group's, merged back by mergeGroups once the two match.
   */
  protected regroup(subscription: ClientSubscription, group: Group | undefined, state: GroupState): Group {
    const from = subscription.group;
    const target = group ?? this.#newGroup(state);
    moveMember(subscription, target);
    if (from !== undefined && from.size === 0) this.#dropGroup(from);
    return target;
  }

  /** Resolves once every task queued so far has run. */
  settled(): Promise<void> {
    return this.#queue;
  }

  scheduleCatchUp(group: Group): void {
    // One queued catch-up per group is enough: it brings the group to the head whenever it runs.
    if (this.#catchUpQueued.has(group)) return;
    this.#catchUpQueued.add(group);
    this.enqueue(async () => {
      this.#catchUpQueued.delete(group);
      if (!this.groups.has(group)) return;
      try {
        await this.ready();
        await this.catchUp(group);
        this.#failedSteps.delete(group);
      } catch (error) {
        this.#failed(error, 'catch-up failed; retrying');
        this.#stepFailed(group, error);
        const timer = setTimeout(() => {
          this.#retryTimers.delete(timer);
          if (!this.#closed) this.scheduleCatchUp(group);
        }, CATCH_UP_RETRY_MS);
        this.#retryTimers.add(timer);
      }
    });
  }

  /**
   * Run `step` for every group, one after the other. A group whose step fails is caught up later
   * (a live head it missed is replayed then); the others are not held back by it. Only a catch-up
   * done counts as the group being back: a step done (a live log of a block ahead of it) may leave
   * it where it was.
   */
  protected async eachGroup(step: (group: Group) => Promise<void>): Promise<void> {
    for (const group of [...this.groups]) {
      if (!this.groups.has(group)) continue;
      try {
        await step(group);
      } catch (error) {
        this.#failed(error, 'subscription step failed; catching up');
        this.#stepFailed(group, error);
        this.scheduleCatchUp(group);
      }
    }
  }

  /** Run `task` after every task queued before it. Failures are logged, never break the chain. */
  protected enqueue(task: () => Promise<void>): void {
    this.#queue = this.#queue.then(task).catch((error: unknown) => {
      this.#failed(error, 'subscription task failed');
    });
  }

  /**
   * Groups whose history now matches the main group's join it, so they are served by one publish.
   * Runs in the queue between publishes, so a moved subscription misses and repeats nothing.
   */
  protected mergeGroups(): void {
    let main = this.#main;
    if (main === undefined || main.cursor?.last === undefined) return;
    for (const group of [...this.groups]) {
      if (group === main || !this.groups.has(group)) continue;
      if (this.mergeable(main, group)) this.#merge(main, group);
      else if (this.mergeable(group, main)) {
        // The main group's members fit into the other one's history (it remembers more).
        this.#merge(group, main);
        this.#main = main = group;
      }
    }
  }

  /** Whether `group`'s members can be served by `target` from now on: both delivered the same head. */
  protected mergeable(target: Group, group: Group): boolean {
    const tip = target.cursor?.last;
    return tip !== undefined && group.cursor?.last?.hash === tip.hash;
  }

  /** Called right before `group`'s members move into `target` (state a subclass carries over). */
  protected merging(_target: Group, _group: Group): void {}

  close(): void {
    this.#closed = true;
    for (const timer of this.#retryTimers) clearTimeout(timer);
    this.#retryTimers.clear();
    this.detach();
  }

  /**
   * The replay bounds of a step of `group`. Its clients moved to another node (or left) meanwhile,
   * the step is abandoned: walked on to the deadline, it jumped, warned and counted for no one.
   */
  protected bounds(group: Group): AdvanceBounds {
    return {
      maxReplayBlocks: this.deps.replayMaxBlocks,
      deadline: performance.now() + this.deps.replayMaxMs,
      abandoned: () => this.#closed || !this.groups.has(group),
    };
  }

  #failed(error: unknown, message: string): void {
    this.deps.telemetry.streamStepFailed(this.upstream.name, this.spec.kind);
    this.deps.warnings.warn({ upstream: this.upstream.name, kind: this.spec.kind, err: (error as Error).message }, message);
  }

  /** One more failure of `group` in a row; from FAILED_STEPS_TO_MOVE on, its node is reported. */
  #stepFailed(group: Group, error: unknown): void {
    // A socket that went is the pool's to judge: the node reconnects, or it goes unusable.
    if (this.#closed || isSocketGone(error)) return;
    const failed = (this.#failedSteps.get(group) ?? 0) + 1;
    this.#failedSteps.set(group, failed);
    if (failed >= FAILED_STEPS_TO_MOVE) this.deps.stepsFailing(this, error as Error);
  }

  #merge(target: Group, group: Group): void {
    this.merging(target, group);
    for (const member of [...group.members]) moveMember(member, target);
    this.groups.delete(group);
    this.deps.logger.debug({ upstream: this.upstream.name, kind: this.spec.kind, into: target.key, from: group.key }, 'subscription groups merged');
  }

  #newGroup(state: GroupState): Group {
    const group = new Group(this.spec.fingerprint, this.deps.publish, state);
    this.groups.add(group);
    return group;
  }

  #dropGroup(group: Group): void {
    this.groups.delete(group);
    if (this.#main === group) {
      // Promote the largest remaining group so new clients join a live history.
      this.#main = [...this.groups].sort((a, b) => b.size - a.size)[0];
    }
  }
}

/**
 * Into the new group first, out of the old one second: the connection never holds no topic at all,
 * which would make uWS drop notifications still queued for it from the old group.
 */
function moveMember(member: ClientSubscription, to: Group): void {
  const from = member.group;
  if (from === to) return;
  to.add(member);
  from?.remove(member);
}
