/**
 * A topic fed by one node stream of its own kind, with no chain history to keep
 * (newPendingTransactions, syncing): the stream is taken from the registry when the topic is
 * attached and let go when it is detached, and the topic is ready once the stream is live.
 */
import type { StreamUser, UpstreamStream } from './upstream-stream.js';
import { Topic, type GroupState } from './topic.js';

export abstract class StreamTopic extends Topic implements StreamUser {
  #stream: UpstreamStream | undefined;

  /** Its node's stream, while the topic is attached. */
  protected get stream(): UpstreamStream | undefined {
    return this.#stream;
  }

  attach(): void {
    this.#stream = this.deps.registry.get(this.upstream, this.spec.streamKey, this.spec.kind, this.spec.upstreamParams);
    this.#stream.addUser(this);
  }

  detach(): void {
    this.#stream?.removeUser(this);
    this.#stream = undefined;
  }

  ready(): Promise<void> {
    return this.#stream?.ready() ?? Promise.reject(new Error('topic detached'));
  }

  protected freshState(): GroupState {
    return {};
  }

  abstract onResult(result: unknown): void;
  abstract onResumed(): void;
}
