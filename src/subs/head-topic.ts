/**
 * newHeads for one upstream. Each group's cursor turns the node's heads into a gapless,
 * duplicate-free, parent-linked stream: missed heads are fetched and replayed, a reorg is
 * delivered from the fork point.
 */
import type { TrackedHead } from '../upstream/head.js';
import { ChainCursor, type AdvanceResult } from './chain-cursor.js';
import type { ClientSubscription, Group } from './group.js';
import { notificationFrame } from './subscription-id.js';
import type { HeadFeed, HeadListener } from './head-feed.js';
import { Topic, type GroupState } from './topic.js';

const headJson = new WeakMap<TrackedHead, string>();

/** Serialize a header once, however many groups and topics deliver it. */
export function serializeHead(head: TrackedHead): string {
  let json = headJson.get(head);
  if (json === undefined) {
    json = JSON.stringify(head.raw);
    headJson.set(head, json);
  }
  return json;
}

export class HeadTopic extends Topic implements HeadListener {
  #feed: HeadFeed | undefined;
  /** the node's head as last seen in this topic's queue: its stream's last head, or its answer to a read of latest */
  #nodeHead: TrackedHead | undefined;
  /** the highest head the node was seen at here */
  #nodeHighest = -1n;

  attach(): void {
    this.#feed = this.deps.headFeed(this.upstream);
    this.#feed.add(this);
  }

  detach(): void {
    this.#feed?.remove(this);
    this.#feed = undefined;
  }

  ready(): Promise<void> {
    return this.#feed?.ready() ?? Promise.reject(new Error('topic detached'));
  }

  /**
   * The node's head, read before the reply when the stream new subscriptions join is behind it
   * (mainBehind: a replay after a move or a resumed stream). Answered above the stream's tip, the
   * subscription is greeted at the node's head in a group of its own (admits), not with the tip the
   * replay starts from, and joins the stream once both delivered the same head. A read that fails
   * leaves it to join the stream, as before.
   */
  override async startHead(): Promise<TrackedHead | undefined> {
    if (!this.mainBehind) return undefined;
    try {
      return (await this.calls.latest()) ?? undefined;
    } catch {
      return undefined;
    }
  }

  protected freshState(): GroupState {
    return { cursor: new ChainCursor<TrackedHead>({ capacity: this.deps.historyBlocks }) };
  }

  onHead(head: TrackedHead): void {
    this.enqueue(async () => {
      this.#noteNodeHead(head);
      await this.eachGroup((group) => this.#advance(group, head, false));
      this.mergeGroups();
    });
  }

  /**
   * A new newHeads subscription first gets the current head, sent to it alone, and only then joins
   * the group's stream: every later head links to one it already has. Queued with the live heads so
   * nothing published in between is missed or doubled.
   */
  override start(subscription: ClientSubscription): void {
    this.enqueue(async () => {
      let group = subscription.group;
      if (subscription.started || group === undefined || subscription.subscriber.closed) return;
      // Moved by a failover before it started: greeted in the queue of the topic that holds it now.
      if (!this.groups.has(group)) return this.deps.start(subscription);
      try {
        if (group.cursor!.last === undefined) {
          const latest = await this.calls.latest();
          if (latest !== null) {
            this.#noteNodeHead(latest);
            await this.#advance(group, latest, false);
          }
        } else group = await this.#toNodeBranch(subscription, group);
      } catch (error) {
        this.deps.warnings.warn({ upstream: this.upstream.name, err: (error as Error).message }, 'could not read the current head for a new subscription');
      }
      // The await may have let a failover or a merge move it to another group.
      if (subscription.group !== group) return this.deps.start(subscription);
      const tip = group.cursor!.last;
      if (tip !== undefined) subscription.subscriber.send(notificationFrame(subscription.id, serializeHead(tip)));
      super.start(subscription);
    });
  }

  onResumed(): void {
    for (const group of this.groups) this.scheduleCatchUp(group);
  }

  protected async catchUp(group: Group): Promise<void> {
    const latest = await this.calls.latest();
    if (latest === null) throw new Error('node returned no latest block');
    this.#noteNodeHead(latest);
    await this.#advance(group, latest, true);
    this.mergeGroups();
  }

  #noteNodeHead(head: TrackedHead): void {
    this.#nodeHead = head;
    if (head.number > this.#nodeHighest) this.#nodeHighest = head.number;
  }

  /**
   * A node that went back below the stream's tip onto another branch rewound (evm_revert, a reorg to
   * a shorter branch): the stream waits until the new branch is as high, and would greet a new
   * subscription with a block the node no longer has. The subscription starts at the node's head
   * instead, in a group of its own (or of one that already did), merged back once the two streams
   * deliver the same head. A node that never was that high (behind, moved to on failover, even on a
   * branch the stream left) is waited for as before, and so is one repeating an older head of the
   * stream's chain.
   */
  async #toNodeBranch(subscription: ClientSubscription, group: Group): Promise<Group> {
    const head = this.#nodeHead;
    const cursor = group.cursor!;
    const wentBack = head !== undefined && head.number < this.#nodeHighest;
    if (!wentBack || head.number >= cursor.last!.number || cursor.has(head.hash)) return group;
    const started = [...this.groups].find((other) => other.cursor?.last?.hash === head.hash);
    const own = this.regroup(subscription, started, this.freshState());
    if (started === undefined) await this.#advance(own, head, false);
    return own;
  }

  async #advance(group: Group, head: TrackedHead, replay: boolean): Promise<void> {
    const cursor = group.cursor!;
    const result: AdvanceResult<TrackedHead> = await cursor.advance(head, this.calls, this.bounds(group));
    this.#account(group, result, replay);
    for (const delivered of result.deliver) group.publish(serializeHead(delivered));
  }

  #account(group: Group, result: AdvanceResult<TrackedHead>, replay: boolean): void {
    const { telemetry, warnings } = this.deps;
    // A jump of a group whose clients all left as it was made is no client's.
    if (result.truncated && group.size > 0) {
      telemetry.replayTruncated('newHeads');
      warnings.warn({ upstream: this.upstream.name, head: result.deliver.at(-1)?.number.toString() }, 'replay bound hit: newHeads stream jumped to the head');
    }
    if (result.orphaned.length > 0) telemetry.reorg(result.orphaned, result.deliver);
    const replayed = replay ? result.deliver.length : Math.max(0, result.deliver.length - 1);
    if (replayed > 0) telemetry.replayed('newHeads', replayed);
  }
}
