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

  protected freshState(): GroupState {
    return { cursor: new ChainCursor<TrackedHead>({ capacity: this.deps.historyBlocks }) };
  }

  onHead(head: TrackedHead): void {
    this.enqueue(async () => {
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
      const group = subscription.group;
      if (subscription.started || group === undefined || subscription.subscriber.closed) return;
      // Moved by a failover before it started: greeted in the queue of the topic that holds it now.
      if (!this.groups.has(group)) return this.deps.start(subscription);
      try {
        if (group.cursor!.last === undefined) {
          const latest = await this.calls.latest();
          if (latest !== null) await this.#advance(group, latest, false);
        }
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
    await this.#advance(group, latest, true);
    this.mergeGroups();
  }

  async #advance(group: Group, head: TrackedHead, replay: boolean): Promise<void> {
    const cursor = group.cursor!;
    const result: AdvanceResult<TrackedHead> = await cursor.advance(head, this.calls, this.bounds());
    this.#account(result, replay);
    for (const delivered of result.deliver) group.publish(serializeHead(delivered));
  }

  #account(result: AdvanceResult<TrackedHead>, replay: boolean): void {
    const { telemetry, warnings } = this.deps;
    if (result.truncated) {
      telemetry.replayTruncated('newHeads');
      warnings.warn({ upstream: this.upstream.name, head: result.deliver.at(-1)?.number.toString() }, 'replay bound hit: newHeads stream jumped to the head');
    }
    if (result.orphaned.length > 0) telemetry.reorg(result.orphaned[0]!.hash);
    const replayed = replay ? result.deliver.length : Math.max(0, result.deliver.length - 1);
    if (replayed > 0) telemetry.replayed('newHeads', replayed);
  }
}
