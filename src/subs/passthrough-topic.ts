/**
 * newPendingTransactions and syncing: no chain history to keep, so notifications are forwarded as
 * they come and a failover simply resubscribes elsewhere under the same client ids. With nothing
 * to replay, a move off a node whose stream still runs waits until the new node's stream is live
 * (SubscriptionManager.rebalance): moved at once, the clients missed what came in between. For a
 * moment after such a move the old node's stream feeds the new topic too (overlapWith), each result
 * passed on once: one the old node had sent just before the new node's subscription began was
 * otherwise lost whenever the new node's answer was read first.
 */
import type { Group } from './group.js';
import type { StreamUser, UpstreamStream } from './upstream-stream.js';
import { Topic, type GroupState } from './topic.js';

/** How long the old node's stream feeds the new topic after a move (overlapWith). */
export const MOVE_OVERLAP_MS = 1000;

export class PassthroughTopic extends Topic implements StreamUser {
  #stream: UpstreamStream | undefined;
  /** while streams overlap: the results passed on, each once */
  #sent: Set<string> | undefined;
  /** the old nodes' streams feeding this topic for now (it is their user too), each with its end */
  readonly #overlaps = new Map<UpstreamStream, NodeJS.Timeout>();

  attach(): void {
    this.#stream = this.deps.registry.get(this.upstream, this.spec.streamKey, this.spec.kind, this.spec.upstreamParams);
    this.#stream.addUser(this);
  }

  detach(): void {
    this.#stream?.removeUser(this);
    this.#stream = undefined;
    for (const stream of [...this.#overlaps.keys()]) this.#endOverlap(stream);
  }

  /**
   * Its clients just moved here from `from`, whose stream still runs: take that stream's results
   * too for MOVE_OVERLAP_MS, passing each result on once.
   */
  overlapWith(from: PassthroughTopic): void {
    const stream = from.#stream;
    if (stream === undefined || stream.closed || stream === this.#stream || this.#overlaps.has(stream)) return;
    stream.addUser(this);
    this.#sent ??= new Set();
    this.#overlaps.set(stream, setTimeout(() => this.#endOverlap(stream), MOVE_OVERLAP_MS));
  }

  #endOverlap(stream: UpstreamStream): void {
    const timer = this.#overlaps.get(stream);
    if (timer === undefined) return;
    this.#overlaps.delete(stream);
    clearTimeout(timer);
    stream.removeUser(this);
    if (this.#overlaps.size === 0) this.#sent = undefined;
  }

  /** Its node's stream is live: notifications are coming. */
  get live(): boolean {
    return this.#stream?.live === true;
  }

  ready(): Promise<void> {
    return this.#stream?.ready() ?? Promise.reject(new Error('topic detached'));
  }

  protected freshState(): GroupState {
    return {};
  }

  onResult(result: unknown): void {
    const json = JSON.stringify(result);
    if (this.#sent !== undefined) {
      if (this.#sent.has(json)) return;
      this.#sent.add(json);
    }
    for (const group of this.groups) group.publish(json);
  }

  onResumed(): void {}

  protected async catchUp(_group: Group): Promise<void> {
    // Nothing to replay: pending transactions and sync status have no history.
  }
}
