/**
 * The `subscriptions moved` log line, one per kind, node and target for the moves of one turn of the
 * loop: written once per group moved, a failover or rebalance of thousands of distinct logs filters
 * wrote thousands of lines each way (50-110 a blip in a soak of a few hundred).
 */
import type { Logger } from '../log.js';

interface Moves {
  kind: string;
  from: string;
  to: string;
  /** groups of subscriptions moved (each counted in evmux_failovers_total) */
  groups: number;
  clients: number;
}

export class MoveLog {
  readonly #logger: Logger;
  readonly #moves = new Map<string, Moves>();

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  note(kind: string, from: string, to: string, clients: number): void {
    const key = `${kind} ${from} ${to}`;
    const moves = this.#moves.get(key);
    if (moves !== undefined) {
      moves.groups++;
      moves.clients += clients;
      return;
    }
    if (this.#moves.size === 0) setImmediate(() => this.#write());
    this.#moves.set(key, { kind, from, to, groups: 1, clients });
  }

  #write(): void {
    for (const moves of this.#moves.values()) this.#logger.info(moves, 'subscriptions moved');
    this.#moves.clear();
  }
}
