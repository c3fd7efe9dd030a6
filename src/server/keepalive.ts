/**
 * Keep-alive pings for WebSocket clients, spread evenly over time.
 *
 * The front end closes a client it has heard nothing from for `idleTimeout`. uWS can ping clients
 * itself (`sendPingsAutomatically`), but it pings each one when that client's own idle timer runs
 * out, so clients that connected together are pinged together: after a restart or a network blip
 * thousands of clients reconnect within seconds, and about 100 s later uWS sent all of them a ping
 * and read all their pongs in one burst. At 10,000 subscribers that burst took about 190 ms of the
 * gateway's CPU within half a second and delayed the newHeads notifications due meanwhile by up to
 * 150 ms (BENCHMARKS.md).
 *
 * Here each client gets a ping every `periodMs` (half the idle timeout, so a live client's pong
 * always arrives in time) at a phase drawn at random when it connects: the clients sit in a ring of
 * one-second slots, and a timer pings one slot per second. 10,000 clients at the default 120 s
 * idle timeout cost about 170 pings a second, evenly.
 */

/** A client socket the ring can ping; `keepAliveSlot` is the ring's bookkeeping (-1: not in it). */
export interface Pingable {
  keepAliveSlot: number;
  ping(): void;
}

const SLOT_MS = 1000;

export class KeepAlive<S extends Pingable> {
  readonly #slots: Set<S>[];
  readonly #slotMs: number;
  readonly #random: () => number;
  #cursor = 0;
  #members = 0;
  #timer: NodeJS.Timeout | undefined;

  /** Ping every member once per `periodMs`; `random` (0 ≤ x < 1) places new members in the ring. */
  constructor(periodMs: number, random: () => number = Math.random) {
    this.#slotMs = Math.min(SLOT_MS, periodMs);
    const count = Math.max(1, Math.round(periodMs / this.#slotMs));
    this.#slots = Array.from({ length: count }, () => new Set<S>());
    this.#random = random;
  }

  get size(): number {
    return this.#members;
  }

  add(socket: S): void {
    if (socket.keepAliveSlot >= 0) return;
    // Any slot but the one being pinged now: the first ping comes 1 to `count` slots from now.
    const slot = (this.#cursor + 1 + Math.floor(this.#random() * this.#slots.length)) % this.#slots.length;
    this.#slots[slot]!.add(socket);
    socket.keepAliveSlot = slot;
    if (this.#members++ === 0) this.#start();
  }

  remove(socket: S): void {
    const slot = socket.keepAliveSlot;
    if (slot < 0) return;
    socket.keepAliveSlot = -1;
    this.#slots[slot]!.delete(socket);
    if (--this.#members === 0) this.#stop();
  }

  #start(): void {
    this.#timer = setInterval(() => this.#tick(), this.#slotMs);
    this.#timer.unref();
  }

  #stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    this.#cursor = (this.#cursor + 1) % this.#slots.length;
    for (const socket of this.#slots[this.#cursor]!) socket.ping();
  }
}
