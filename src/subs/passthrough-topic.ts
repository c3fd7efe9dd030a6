/**
 * newPendingTransactions and syncing: no chain history to keep, so notifications are forwarded as
 * they come and a failover simply resubscribes elsewhere under the same client ids. With nothing
 * to replay, a move off a node whose stream still runs waits until the new node's stream is live
 * (SubscriptionManager.rebalance): moved at once, the clients missed what came in between.
 */
import type { Group } from './group.js';
import type { StreamUser, UpstreamStream } from './upstream-stream.js';
import { Topic, type GroupState } from './topic.js';

export class PassthroughTopic extends Topic implements StreamUser {
  #stream: UpstreamStream | undefined;

  attach(): void {
    this.#stream = this.deps.registry.get(this.upstream, this.spec.fingerprint, this.spec.kind, this.spec.upstreamParams);
    this.#stream.addUser(this);
  }

  detach(): void {
    this.#stream?.removeUser(this);
    this.#stream = undefined;
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
    for (const group of this.groups) group.publish(json);
  }

  onResumed(): void {}

  protected async catchUp(_group: Group): Promise<void> {
    // Nothing to replay: pending transactions and sync status have no history.
  }
}
