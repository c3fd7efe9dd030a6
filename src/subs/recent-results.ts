/**
 * The last results a pass-through topic passed on, so clients that move to another node are not
 * sent again what they were just sent (PassthroughTopic.adopt): pending transactions reach
 * nodes at different moments, and the node they move to may announce one the old node already had.
 * A ring of at most RECENT_RESULTS_MAX, so a busy stream (hundreds a second) costs one array write
 * per result and bounded memory.
 */

/** How far back a move looks, and how long after it what it found is not sent again. */
export const RECENT_RESULTS_MS = 5000;
/** At most this many are remembered: on a stream busier than 200 a second, the window is shorter. */
export const RECENT_RESULTS_MAX = 1000;

export class RecentResults {
  readonly #results: string[] = [];
  readonly #times: number[] = [];
  #next = 0;

  /** `result` (serialized) was passed on at `now` (performance.now()). */
  add(result: string, now: number): void {
    this.#results[this.#next] = result;
    this.#times[this.#next] = now;
    this.#next = (this.#next + 1) % RECENT_RESULTS_MAX;
  }

  /** Those passed on in the RECENT_RESULTS_MS before `now`. */
  since(now: number): Set<string> {
    const recent = new Set<string>();
    for (let index = 0; index < this.#results.length; index++) {
      if (now - this.#times[index]! <= RECENT_RESULTS_MS) recent.add(this.#results[index]!);
    }
    return recent;
  }
}
