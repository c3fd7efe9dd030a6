/**
 * newPendingTransactions: no chain history to keep, so notifications are forwarded as they come
 * and a failover simply resubscribes elsewhere under the same client ids (syncing, a stream of
 * states, has its own topic: syncing-topic.ts). With nothing to replay, a move off a node whose
 * stream still runs waits until the new node's stream is live (SubscriptionManager.rebalance):
 * moved at once, the clients missed what came in between. For a moment after such a move the old
 * node's stream feeds the new topic too (overlapWith): one the old node had sent just before the
 * new node's subscription began was otherwise lost whenever the new node's answer was read first.
 * Clients moved in (that way or by a failover) are not sent again for a while what they were sent
 * on the old node lately (adopt): nodes hear of a transaction at different moments, and the new
 * node may announce one the old one already had.
 */
import { performance } from 'node:perf_hooks';
import type { ClientSubscription, Group } from './group.js';
import { RECENT_RESULTS_MS, RecentResults } from './recent-results.js';
import { StreamTopic } from './stream-topic.js';
import type { UpstreamStream } from './upstream-stream.js';
import type { GroupState, Topic } from './topic.js';

/** How long the old node's stream feeds the new topic after a move (overlapWith). */
export const MOVE_OVERLAP_MS = 1000;

export class PassthroughTopic extends StreamTopic {
  /** what it passed on lately: not sent again to its clients on the node they move to */
  readonly #recent = new RecentResults();
  /**
   * For RECENT_RESULTS_MS after a move, per group it touched (the group moved in, and while an old
   * node's stream feeds this topic, every group): the results that group was sent, each sent once.
   */
  readonly #sent = new Map<Group, { results: Set<string>; timer: NodeJS.Timeout }>();
  /** the old nodes' streams feeding this topic for now (it is their user too), each with its end */
  readonly #overlaps = new Map<UpstreamStream, NodeJS.Timeout>();

  override detach(): void {
    super.detach();
    for (const stream of [...this.#overlaps.keys()]) this.#endOverlap(stream);
    for (const { timer } of this.#sent.values()) clearTimeout(timer);
    this.#sent.clear();
  }

  /**
   * Clients moved here from `from` (a failover, or a move back): what that topic passed on in the
   * last RECENT_RESULTS_MS is not sent to them again for RECENT_RESULTS_MS.
   */
  override adopt(members: ClientSubscription[], state: GroupState, from?: Topic): Group {
    const group = super.adopt(members, state);
    if (from instanceof PassthroughTopic) this.#dedupe(group, from.#recent.since(performance.now()));
    return group;
  }

  /**
   * Its clients just moved here from `from`, whose stream still runs: take that stream's results
   * too for MOVE_OVERLAP_MS. Its groups from before the move get that stream too: what they were
   * sent here lately is not sent to them again.
   */
  overlapWith(from: PassthroughTopic): void {
    const stream = from.stream;
    if (stream === undefined || stream.closed || stream === this.stream || this.#overlaps.has(stream)) return;
    stream.addUser(this);
    const recent = this.#recent.since(performance.now());
    for (const group of this.groups) if (!this.#sent.has(group)) this.#dedupe(group, new Set(recent));
    this.#overlaps.set(stream, setTimeout(() => this.#endOverlap(stream), MOVE_OVERLAP_MS));
  }

  #endOverlap(stream: UpstreamStream): void {
    const timer = this.#overlaps.get(stream);
    if (timer === undefined) return;
    this.#overlaps.delete(stream);
    clearTimeout(timer);
    stream.removeUser(this);
  }

  #dedupe(group: Group, sent: Set<string>): void {
    clearTimeout(this.#sent.get(group)?.timer);
    this.#sent.set(group, { results: sent, timer: setTimeout(() => this.#sent.delete(group), RECENT_RESULTS_MS) });
  }

  /** Its node's stream is live: notifications are coming. */
  get live(): boolean {
    return this.stream?.live === true;
  }

  onResult(result: unknown): void {
    const json = JSON.stringify(result);
    this.#recent.add(json, performance.now());
    for (const group of this.groups) if (this.#sent.size === 0 || this.#firstTo(group, json)) group.publish(json);
  }

  /** Whether `group` was not sent `json` since its move (then it is, from now on). */
  #firstTo(group: Group, json: string): boolean {
    const sent = this.#sent.get(group)?.results;
    if (sent === undefined) return true;
    if (sent.has(json)) return false;
    sent.add(json);
    return true;
  }

  onResumed(): void {}

  protected async catchUp(_group: Group): Promise<void> {
    // Nothing to replay: pending transactions have no history.
  }
}
