/**
 * The eth_subscribe calls on one socket that timed out, by request id, for a while after. A node
 * slow to answer still makes the subscription, and its late answer finds no call waiting: evmux
 * then unsubscribes it, since nobody reads it (a client that retried its subscribe would otherwise
 * leave one more on the node each time, each sending notifications evmux parses and drops).
 */

/** How long after its timeout a late answer is still looked out for. */
export const LATE_ANSWER_MS = 60_000;

/** Timed-out subscribes remembered at most per socket; the oldest are forgotten first. */
const MAX_REMEMBERED = 1_000;

export class LateSubscribes {
  /** request id -> when it timed out (performance.now()); insertion order is timeout order */
  readonly #timedOut = new Map<number, number>();

  /** The eth_subscribe sent under `id` timed out at `now`. */
  timedOut(id: number, now: number): void {
    this.#timedOut.set(id, now);
    for (const [oldest, at] of this.#timedOut) {
      if (this.#timedOut.size <= MAX_REMEMBERED && now - at < LATE_ANSWER_MS) break;
      this.#timedOut.delete(oldest);
    }
  }

  /** Whether an answer under `id` with no call waiting is a timed-out subscribe's; it is forgotten. */
  take(id: number, now: number): boolean {
    const at = this.#timedOut.get(id);
    if (at === undefined) return false;
    this.#timedOut.delete(id);
    return now - at < LATE_ANSWER_MS;
  }

  /** The socket closed: its subscriptions are gone with it. */
  clear(): void {
    this.#timedOut.clear();
  }
}
