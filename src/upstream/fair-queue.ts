/**
 * Calls waiting for a slot on one node, taken one client at a time in turn rather than first come,
 * first served. In a single line, one client with hundreds of slow calls (wide eth_getLogs) held
 * every other client's call behind all of its own, and filled the line so that theirs were refused.
 * Here the next free slot goes to the next client in the round, and when the line is full a newcomer
 * takes the place of the newest call of the client with the most waiting, unless that is the
 * newcomer's own client.
 *
 * Clients are keyed by session key (an IP, or an API key); evmux's own calls (probes, replays) by ''.
 * The round is a Map's insertion order: a client served goes to the back if it still has calls waiting.
 */

export interface Waiter {
  readonly client: string;
}

export class FairQueue<W extends Waiter> {
  readonly #capacity: number;
  readonly #byClient = new Map<string, W[]>();
  #size = 0;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  get size(): number {
    return this.#size;
  }

  /**
   * Queue `waiter`. Returns the waiter that lost its place to it (to be refused), the waiter itself
   * when the line is full of its own client's calls as much as anyone's, or undefined when it simply joined.
   */
  push(waiter: W): W | undefined {
    let pushedOut: W | undefined;
    if (this.#size >= this.#capacity) {
      const heaviest = this.#heaviest();
      const own = this.#byClient.get(waiter.client)?.length ?? 0;
      if (heaviest === undefined || heaviest.length <= own + 1) return waiter;
      pushedOut = heaviest.pop()!;
      this.#forget(pushedOut.client, heaviest);
    }
    const line = this.#byClient.get(waiter.client);
    if (line === undefined) this.#byClient.set(waiter.client, [waiter]);
    else line.push(waiter);
    this.#size++;
    return pushedOut;
  }

  /** The oldest waiter of the next client in the round. */
  shift(): W | undefined {
    for (const [client, line] of this.#byClient) {
      const waiter = line.shift()!;
      this.#byClient.delete(client);
      if (line.length > 0) this.#byClient.set(client, line);
      this.#size--;
      return waiter;
    }
    return undefined;
  }

  /** Take `waiter` out (its wait timed out); false when it was no longer queued. */
  remove(waiter: W): boolean {
    const line = this.#byClient.get(waiter.client);
    const index = line?.indexOf(waiter) ?? -1;
    if (index < 0) return false;
    line!.splice(index, 1);
    this.#forget(waiter.client, line!);
    return true;
  }

  /** Every waiter, oldest client first; the queue is left empty. */
  drain(): W[] {
    const all = [...this.#byClient.values()].flat();
    this.#byClient.clear();
    this.#size = 0;
    return all;
  }

  #heaviest(): W[] | undefined {
    let heaviest: W[] | undefined;
    for (const line of this.#byClient.values()) if (heaviest === undefined || line.length > heaviest.length) heaviest = line;
    return heaviest;
  }

  /** One waiter left `line` by other means than shift. */
  #forget(client: string, line: W[]): void {
    this.#size--;
    if (line.length === 0) this.#byClient.delete(client);
  }
}
