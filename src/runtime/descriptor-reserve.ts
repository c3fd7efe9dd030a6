/**
 * Descriptors held back from clients. `limits.maxConnections` counts WebSocket clients only
 * (uWebSockets.js reports no HTTP connection opening or closing), so plain HTTP connections, or TCP
 * connections that never send a request, can still take every descriptor. Then accept() fails with
 * EMFILE, uWebSockets.js retries it in a busy loop (one core at 100 %), and a node connection that
 * drops cannot be made again.
 *
 * The reserve holds `size` descriptors open on /dev/null and checks every `intervalMs` whether one
 * more can be opened. When none can, it lets its own go, so node sockets, the admin listener and
 * logs have room, and calls `exhausted`: the gateway stops accepting clients, which also ends the
 * busy loop. Once it can take its `size` back with `headroom` more to spare, it keeps the `size`
 * and calls `recovered`: the gateway accepts again.
 */
import { closeSync, openSync } from 'node:fs';

export interface ReserveHandlers {
  exhausted(): void;
  recovered(): void;
}

/** How many descriptors to hold under an open-files limit, and how many more must be free to resume. */
export function reserveSizes(limit: number): { size: number; headroom: number } {
  const size = Math.min(64, Math.max(8, Math.ceil(limit / 64)));
  return { size, headroom: Math.max(size, Math.ceil(limit / 40)) };
}

/** Descriptor-table errors; any other failure to open /dev/null means the reserve cannot work here. */
function isTableFull(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'EMFILE' || code === 'ENFILE';
}

export class DescriptorReserve {
  readonly #held: number[] = [];
  readonly #size: number;
  readonly #headroom: number;
  readonly #handlers: ReserveHandlers;
  readonly #timer: NodeJS.Timeout;
  #exhausted = false;

  /**
   * Takes `size` descriptors at once and starts checking. Throws what opening /dev/null threw when
   * that is not a full table (no /dev/null in a sandbox, say): the caller runs without a reserve.
   */
  constructor(size: number, headroom: number, handlers: ReserveHandlers, intervalMs = 100) {
    this.#size = size;
    this.#headroom = headroom;
    this.#handlers = handlers;
    this.#fill(size);
    this.#timer = setInterval(() => this.#check(), intervalMs).unref();
    if (this.#held.length < size) this.#release();
  }

  /** True while clients hold the descriptors the reserve gave back. */
  get exhausted(): boolean {
    return this.#exhausted;
  }

  close(): void {
    clearInterval(this.#timer);
    this.#drop(0);
  }

  #check(): void {
    try {
      this.#step();
    } catch {
      // /dev/null could not be opened for another reason than a full table: nothing to learn this time.
    }
  }

  #step(): void {
    if (!this.#exhausted) {
      if (this.#fill(this.#size + 1)) this.#drop(this.#size);
      else this.#release();
      return;
    }
    if (!this.#fill(this.#size + this.#headroom)) {
      this.#drop(0);
      return;
    }
    this.#drop(this.#size);
    this.#exhausted = false;
    this.#handlers.recovered();
  }

  #release(): void {
    this.#drop(0);
    this.#exhausted = true;
    this.#handlers.exhausted();
  }

  /** Open descriptors until `count` are held; false when the table filled first. */
  #fill(count: number): boolean {
    while (this.#held.length < count) {
      try {
        this.#held.push(openSync('/dev/null', 'r'));
      } catch (error) {
        if (isTableFull(error)) return false;
        this.#drop(0);
        throw error;
      }
    }
    return true;
  }

  #drop(keep: number): void {
    while (this.#held.length > keep) closeSync(this.#held.pop()!);
  }
}
