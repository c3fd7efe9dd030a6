/**
 * The calls of batches that wait for a slot on their connection (limits.maxInFlightPerConnection),
 * started in the order they came as calls settle. A batch is one request to its client: viem sends
 * every call made in one tick as one batch (up to 1,000 by default), and refused past the limit,
 * the calls of a batch of 200 past the 128th each failed. At most `maxHeld` calls wait on a
 * connection; more are refused (-32005) as before.
 */
export interface SlotHolder {
  /** calls of the connection in flight */
  readonly inFlight: number;
  /** the client has left: its held calls are started at once, to be settled without a node */
  readonly closed: boolean;
}

/** Spent slots at the list's front are let go once there are this many, and no fewer than live ones. */
const COMPACT_AFTER = 64;

export class HeldCalls {
  readonly #holder: SlotHolder;
  readonly #maxInFlight: number;
  readonly #maxHeld: number;
  /** waiting starts, the first at #next */
  #starts: Array<(() => void) | undefined> = [];
  #next = 0;
  #releasing = false;

  constructor(holder: SlotHolder, maxInFlight: number, maxHeld: number) {
    this.#holder = holder;
    this.#maxInFlight = maxInFlight;
    this.#maxHeld = maxHeld;
  }

  get size(): number {
    return this.#starts.length - this.#next;
  }

  /**
   * Slots the list keeps, waiting or spent: at most twice maxHeld and COMPACT_AFTER. A connection
   * that always has calls waiting never empties the list, and its spent slots once piled up for good
   * (38,000 after a minute of batches at 620 calls a second; after two days the list could grow no
   * more, and the process died).
   */
  get slots(): number {
    return this.#starts.length;
  }

  /** Keep `start` until a slot is free; false (nothing kept) when `maxHeld` calls wait already. */
  hold(start: () => void): boolean {
    if (this.size >= this.#maxHeld) return false;
    this.#starts.push(start);
    return true;
  }

  /** A call settled: start the calls held, in order, while slots are free. */
  release(): void {
    // A held call that settles as it starts (refused, answered by evmux) comes back here: the loop goes on.
    if (this.#releasing) return;
    this.#releasing = true;
    try {
      while (this.size > 0 && (this.#holder.closed || this.#holder.inFlight < this.#maxInFlight)) {
        const start = this.#starts[this.#next];
        this.#starts[this.#next++] = undefined;
        start?.();
      }
      if (this.size === 0) {
        this.#starts = [];
        this.#next = 0;
      } else if (this.#next >= COMPACT_AFTER && this.#next >= this.size) {
        this.#starts = this.#starts.slice(this.#next);
        this.#next = 0;
      }
    } finally {
      this.#releasing = false;
    }
  }
}
