// CPU of peers that take turns publishing (chain.ts), counted in each peer's own turns only: what a
// peer spends while it waits for the other's turn is not spent on its heads, and a run of peers
// one after the other never counted it either.
//
// The process CPU of every peer is read at each turn boundary, 0.9 of a block interval after the
// turn's last head is due: that head's delivery (~170 ms of CPU at 10,000 clients on a slow
// machine) is then counted in its own turn, and the next turn's first head is still 25 ms away at
// 250 ms blocks. The span from boundary k to k + 1 holds turn k's heads, which belong to peer
// k mod count.
import { cpuMs } from './children.js';
import type { Turns } from './chain.js';

export interface TurnCpuShare {
  /** CPU in the peer's own turns (ms) */
  ms: number;
  /** whole turns counted */
  turns: number;
  /** heads due in those turns */
  heads: number;
}

export class TurnCpu {
  readonly #pids: readonly number[];
  readonly #genesisMs: number;
  readonly #intervalMs: number;
  readonly #turnMs: number;
  readonly #readings: { turn: number; cpu: number[] }[] = [];
  #timer: NodeJS.Timeout | undefined;

  /** `pids[i]` is the peer that publishes in turn index i (of pids.length turns of `turnMs`). */
  constructor(pids: readonly number[], chain: { genesisMs: number; intervalMs: number; turns: Pick<Turns, 'ms'> }) {
    this.#pids = pids;
    this.#genesisMs = chain.genesisMs;
    this.#intervalMs = chain.intervalMs;
    this.#turnMs = chain.turns.ms;
  }

  start(): void {
    const next = Math.ceil((Date.now() - this.#boundaryMs(0)) / this.#turnMs);
    this.#arm(Math.max(0, next));
  }

  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The CPU of peer `index` summed over its whole turns between start() and stop(). */
  share(index: number): TurnCpuShare {
    let ms = 0;
    let turns = 0;
    for (let i = 1; i < this.#readings.length; i++) {
      const from = this.#readings[i - 1]!;
      const to = this.#readings[i]!;
      if (to.turn !== from.turn + 1 || from.turn % this.#pids.length !== index) continue;
      const spent = (to.cpu[index] ?? Number.NaN) - (from.cpu[index] ?? Number.NaN);
      if (!Number.isFinite(spent)) continue;
      ms += spent;
      turns++;
    }
    return { ms, turns, heads: (turns * this.#turnMs) / this.#intervalMs };
  }

  #boundaryMs(turn: number): number {
    return this.#genesisMs + turn * this.#turnMs + this.#intervalMs * 0.9;
  }

  #arm(turn: number): void {
    this.#timer = setTimeout(() => {
      this.#readings.push({ turn, cpu: this.#pids.map((pid) => cpuMs(pid)) });
      this.#arm(turn + 1);
    }, Math.max(0, this.#boundaryMs(turn) - Date.now()));
  }
}
