/**
 * Calls awaiting a node's reply, by evmux's own id. Ids rise by one per call, so a ring of slots
 * indexed by the id's low bits finds a call without hashing. A Map would do the same job, but a
 * long-lived Map that gains and loses an entry per call rehashes every few calls into a table
 * allocated in the old generation; at thousands of calls a second that garbage brings mark-compact
 * pauses into the latency tail. The ring doubles when a slot is still taken by an older call.
 */
export interface PendingCall {
  readonly id: number;
  /** when the call times out, on the performance.now() clock */
  readonly deadline: number;
  /** the size of its request frame, counted in `bytes` until the node has read it */
  readonly bytes?: number;
}

export class PendingCalls<T extends PendingCall> {
  #slots: Array<T | undefined>;
  #mask: number;
  #size = 0;
  #bytes = 0;
  /** the node has read every request up to this id (delivered) */
  #deliveredThrough = 0;
  /** the largest request of the calls takeExpired took that the node may not have read yet */
  #expiredUnread: T | undefined;

  /** @param capacity initial slots, a power of two; @default 256 */
  constructor(capacity = 256) {
    if (!Number.isInteger(Math.log2(capacity))) throw new Error(`capacity must be a power of two, got ${capacity}`);
    this.#slots = new Array<T | undefined>(capacity).fill(undefined);
    this.#mask = capacity - 1;
  }

  get size(): number {
    return this.#size;
  }

  /**
   * The request bytes of the calls pending that the node may not have read yet: sent, or about to
   * be, and neither answered nor known delivered.
   */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * The node has read every request up to `id`: it answered call `id` (or a pong sent after it).
   * One socket delivers in order, so the calls before it are read too, however long the node takes
   * to answer them (a slow eth_call with a large body): their bytes leave `bytes`. Each id is
   * passed over once, so this costs the calls sent since the last time.
   */
  delivered(id: number): void {
    for (let next = this.#deliveredThrough + 1; next <= id; next++) {
      const call = this.#slots[next & this.#mask];
      if (call !== undefined && call.id === next) this.#bytes -= call.bytes ?? 0;
    }
    if (id > this.#deliveredThrough) this.#deliveredThrough = id;
    if (this.#expiredUnread !== undefined && this.#expiredUnread.id <= id) this.#expiredUnread = undefined;
  }

  add(call: T): void {
    while (this.#slots[call.id & this.#mask] !== undefined) this.#grow();
    this.#slots[call.id & this.#mask] = call;
    this.#size++;
    if (call.id > this.#deliveredThrough) this.#bytes += call.bytes ?? 0;
  }

  /** The call with this id, if it is still pending. */
  get(id: number): T | undefined {
    const call = this.#slots[id & this.#mask];
    return call !== undefined && call.id === id ? call : undefined;
  }

  /** Removes and returns the call with this id, if it is still pending. */
  take(id: number): T | undefined {
    const slot = id & this.#mask;
    const call = this.#slots[slot];
    if (call === undefined || call.id !== id) return undefined;
    this.#slots[slot] = undefined;
    this.#size--;
    if (id > this.#deliveredThrough) this.#bytes -= call.bytes ?? 0;
    return call;
  }

  /** Removes and returns the calls whose deadline is at or before `now`, oldest first. */
  takeExpired(now: number): T[] {
    const expired: T[] = [];
    for (const call of this.#slots) if (call !== undefined && call.deadline <= now) expired.push(call);
    for (const call of expired) {
      this.take(call.id);
      if (call.id > this.#deliveredThrough && (call.bytes ?? 0) > (this.#expiredUnread?.bytes ?? 0)) this.#expiredUnread = call;
    }
    return expired.sort((a, b) => a.id - b.id);
  }

  /** The earliest deadline of the pending calls; Infinity when none is pending. */
  earliestDeadline(): number {
    let earliest = Infinity;
    for (const call of this.#slots) if (call !== undefined && call.deadline < earliest) earliest = call.deadline;
    return earliest;
  }

  /**
   * The call with the largest request the node may not have read yet (not known delivered): one
   * pending, or one that timed out while the node had yet to read it (no longer take-able), if any.
   */
  largestUnread(): T | undefined {
    let largest: T | undefined;
    for (const call of this.#slots) {
      if (call !== undefined && call.id > this.#deliveredThrough && (call.bytes ?? 0) > (largest?.bytes ?? 0)) largest = call;
    }
    const expired = this.#expiredUnread;
    return expired !== undefined && (expired.bytes ?? 0) > (largest?.bytes ?? 0) ? expired : largest;
  }

  /** Removes and returns every pending call, oldest first. */
  takeAll(): T[] {
    const calls = this.#slots.filter((call): call is T => call !== undefined).sort((a, b) => a.id - b.id);
    this.#slots.fill(undefined);
    this.#size = 0;
    this.#bytes = 0;
    this.#expiredUnread = undefined;
    return calls;
  }

  #grow(): void {
    const calls = this.#slots.filter((call): call is T => call !== undefined);
    // Two live ids can still share a slot after one doubling (they differ by a multiple of it).
    for (let capacity = this.#slots.length * 2; ; capacity *= 2) {
      const mask = capacity - 1;
      const slots = new Array<T | undefined>(capacity).fill(undefined);
      let collided = false;
      for (const call of calls) {
        if (slots[call.id & mask] !== undefined) {
          collided = true;
          break;
        }
        slots[call.id & mask] = call;
      }
      if (!collided) {
        this.#slots = slots;
        this.#mask = mask;
        return;
      }
    }
  }
}
