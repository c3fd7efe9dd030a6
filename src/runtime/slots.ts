/**
 * At most `size` pieces of work at once; the rest wait their turn, first come first served, urgent
 * work before the rest. For work evmux does on a node on its own account (replays, filters made
 * again after a failover), so that a burst of it waits here rather than overflowing the node's
 * request queue, and the node's other slots stay free for clients and health probes.
 */
/** evmux's own work on a node may hold one in this many of its request slots. */
const OWN_WORK_SHARE = 8;

/** The slots evmux's own work of one kind may hold on a node taking `maxConcurrency` calls at once: 32 of 256. */
export function ownWorkSlots(maxConcurrency: number): number {
  return Math.ceil(maxConcurrency / OWN_WORK_SHARE);
}

export class Slots {
  readonly #size: number;
  readonly #urgent: Array<() => void> = [];
  readonly #waiting: Array<() => void> = [];
  #active = 0;

  /** `what`: the setting `size` comes from, for the error a bad one gets. */
  constructor(size: number, what = 'Slots size') {
    if (!Number.isSafeInteger(size) || size < 1) throw new RangeError(`${what} must be a positive integer, got ${size}`);
    this.#size = size;
  }

  /** Pieces of work waiting for a slot. */
  get waiting(): number {
    return this.#urgent.length + this.#waiting.length;
  }

  /** `urgent`: small work others wait on, which takes the next free slot before any work that is not. */
  async run<T>(work: () => Promise<T>, urgent = false): Promise<T> {
    if (this.#active < this.#size) this.#active++;
    // The slot is handed over by the work that frees it (see #release), so #active stays put.
    else await new Promise<void>((resolve) => (urgent ? this.#urgent : this.#waiting).push(resolve));
    try {
      return await work();
    } finally {
      this.#release();
    }
  }

  #release(): void {
    const next = this.#urgent.shift() ?? this.#waiting.shift();
    if (next !== undefined) next();
    else this.#active--;
  }
}
