/**
 * Notifications a node sent for a subscription id evmux has not routed yet. A node may write its
 * eth_subscribe answer and the subscription's first notifications in one go (geth holds them
 * until the id is out, then flushes them), and ws reads every frame of a chunk before the
 * answer's promise lets the stream take its id: those notifications found no stream and were
 * dropped (a pending transaction, a syncing status). They are kept until the event loop's next
 * turn, by which the id is routed, and handed to the stream that takes it. Notifications of a
 * subscription that has ended pass through the same way and are dropped with the turn.
 */

/** Held at most per node in one turn: a node's burst for an id nobody takes is not kept whole. */
const MAX_HELD = 64;

export class EarlyNotifications {
  #held: Array<{ id: string; result: unknown }> = [];
  #clearing = false;

  hold(id: string, result: unknown): void {
    if (this.#held.length >= MAX_HELD) return;
    this.#held.push({ id, result });
    if (this.#clearing) return;
    this.#clearing = true;
    setImmediate(() => {
      this.#held = [];
      this.#clearing = false;
    });
  }

  /** The results held for `id`, in the order they came; they are no longer held. */
  take(id: string): unknown[] {
    if (this.#held.length === 0) return [];
    const taken = this.#held.filter((note) => note.id === id).map((note) => note.result);
    if (taken.length > 0) this.#held = this.#held.filter((note) => note.id !== id);
    return taken;
  }
}
