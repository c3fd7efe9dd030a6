/**
 * The newHeads stream of one upstream, parsed once per notification and fanned out to the topics
 * that follow that node's chain (its newHeads topic and every logs topic on it).
 */
import type { Logger } from '../log.js';
import { toTrackedHead, type TrackedHead } from '../upstream/head.js';
import type { Upstream } from '../upstream/upstream.js';
import type { StreamRegistry } from './stream-registry.js';
import type { StreamUser, UpstreamStream } from './upstream-stream.js';

export interface HeadListener {
  onHead(head: TrackedHead): void;
  onResumed(): void;
}

export class HeadFeed implements StreamUser {
  readonly #upstream: Upstream;
  readonly #stream: UpstreamStream;
  readonly #listeners = new Set<HeadListener>();
  readonly #logger: Logger;

  constructor(upstream: Upstream, registry: StreamRegistry, logger: Logger) {
    this.#upstream = upstream;
    this.#stream = registry.get(upstream, 'newHeads', 'newHeads', ['newHeads']);
    this.#logger = logger;
  }

  add(listener: HeadListener): void {
    if (this.#listeners.size === 0) this.#stream.addUser(this);
    this.#listeners.add(listener);
  }

  remove(listener: HeadListener): void {
    if (!this.#listeners.delete(listener)) return;
    if (this.#listeners.size === 0) this.#stream.removeUser(this);
  }

  ready(): Promise<void> {
    return this.#stream.ready();
  }

  onResult(result: unknown): void {
    let head: TrackedHead;
    try {
      head = toTrackedHead(result);
    } catch (error) {
      this.#logger.warn({ upstream: this.#upstream.name, err: (error as Error).message }, 'ignoring malformed newHeads notification');
      return;
    }
    this.#upstream.noteHead(head);
    for (const listener of this.#listeners) listener.onHead(head);
  }

  onResumed(): void {
    for (const listener of this.#listeners) listener.onResumed();
  }
}
