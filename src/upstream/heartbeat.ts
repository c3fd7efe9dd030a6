/**
 * One socket's ping/pong heartbeat: a ping every `intervalMs`, one outstanding at a time, and the
 * socket given up when its pong is not back within `timeoutMs`, or later while what it waits
 * behind is still under way (a message the node is sending, requests sent before the ping that
 * the node is answering: the socket's progress, see receive-meter.ts and requests-ahead.ts).
 */
import { afterReads } from '../runtime/after-reads.js';

/** What the heartbeat needs of its socket. */
export interface HeartbeatSocket<Mark> {
  /** whether the socket is open (a closing one is left to close) */
  open(): boolean;
  ping(): void;
  /** where the socket's traffic stands now */
  progressMark(): Mark;
  /** whether the node has been busy with the socket since `mark` */
  busySince(mark: Mark): boolean;
  /** `mark` with what arrives looked at afresh, the requests ahead of the ping kept */
  renewed(mark: Mark): Mark;
  releaseMark(mark: Mark): void;
  /** the pong did not come: cut the socket */
  lost(reason: string): void;
}

export class Heartbeat<Mark> {
  readonly #socket: HeartbeatSocket<Mark>;
  readonly #timeoutMs: number;
  readonly #pingTimer: NodeJS.Timeout;
  #pongTimer: NodeJS.Timeout | undefined;
  /** where the traffic stood when the ping awaiting its pong went */
  #pongMark: Mark | undefined;

  constructor(socket: HeartbeatSocket<Mark>, intervalMs: number, timeoutMs: number) {
    this.#socket = socket;
    this.#timeoutMs = timeoutMs;
    this.#pingTimer = setInterval(() => {
      if (!socket.open()) return;
      // One outstanding ping at a time, so the deadline is not pushed back by later pings.
      if (this.#pongTimer === undefined) this.#awaitPong(socket.progressMark());
      socket.ping();
    }, intervalMs);
  }

  /** A pong came (any pong: it answers the ping outstanding, or an earlier one behind it). */
  pong(): void {
    clearTimeout(this.#pongTimer);
    this.#pongTimer = undefined;
    if (this.#pongMark !== undefined) this.#socket.releaseMark(this.#pongMark);
    this.#pongMark = undefined;
  }

  stop(): void {
    clearInterval(this.#pingTimer);
    this.pong();
  }

  #awaitPong(mark: Mark): void {
    this.#pongMark = mark;
    // Judged after the turn's reads (afterReads): a pong that came while evmux itself was paused counts.
    this.#pongTimer = setTimeout(() => afterReads(() => this.#overdue(mark)), this.#timeoutMs);
  }

  #overdue(mark: Mark): void {
    // The pong came meanwhile, or the heartbeat stopped (the socket closed).
    if (this.#pongMark !== mark) return;
    this.#pongTimer = undefined;
    if (this.#socket.busySince(mark)) {
      this.#awaitPong(this.#socket.renewed(mark));
      return;
    }
    this.pong();
    this.#socket.lost(`no pong within ${this.#timeoutMs} ms (heartbeat.timeoutMs)`);
  }
}
