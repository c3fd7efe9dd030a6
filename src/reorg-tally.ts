/**
 * Tells apart the reorgs delivered streams go over, so that evmux_reorgs_total counts each once
 * however many streams went over it. Each stream orphans only the heads it had delivered: one on a
 * node a block behind one head fewer than one at the head, a logs stream anchored above the fork
 * point none below its anchor, a jump those the node proved gone. So no one head serves as the
 * reorg's name (the newest differs for the stream behind, the oldest for the one anchored above);
 * but each stream's orphans are a stretch of the one branch the reorg left, and a stretch that
 * overlaps or touches one already counted is that reorg.
 *
 * Pure: no timers, no I/O.
 */
import type { Head } from './subs/chain-cursor.js';

/**
 * Orphaned heads remembered: several reorgs as deep as the default subscriptions.historyBlocks
 * (256), hundreds of the usual one or two blocks. The streams going over one reorg do so within
 * the lag a node is still followed at.
 */
export const ORPHANS_REMEMBERED = 1024;

export type ChainLink = Pick<Head, 'hash' | 'parentHash'>;

export class ReorgTally {
  /** heads counted reorgs orphaned: hash → parent hash, least recently orphaned first */
  readonly #orphans = new Map<string, string>();

  /**
   * A stream went over a reorg: `orphaned` are the heads it took off (descending, newest first),
   * `delivered` the branch it took instead. True when no stream went over that reorg before.
   */
  note(orphaned: readonly ChainLink[], delivered: readonly ChainLink[]): boolean {
    const newest = orphaned[0];
    const oldest = orphaned.at(-1);
    if (newest === undefined || oldest === undefined) return false;
    const touch = this.#touches(orphaned, newest, oldest);
    // Back on the chain (a reorg back to a branch left before): a reorg taking them off again is another one.
    for (const head of delivered) this.#orphans.delete(head.hash);
    // Just below a counted stretch proves less: a deeper reorg may take it too, and with these
    // heads kept the stream at its head, reporting that one, would seem to be on the counted one.
    if (touch === 'below') return false;
    for (const head of orphaned) {
      this.#orphans.delete(head.hash);
      this.#orphans.set(head.hash, head.parentHash);
    }
    for (const hash of this.#orphans.keys()) {
      if (this.#orphans.size <= ORPHANS_REMEMBERED) break;
      this.#orphans.delete(hash);
    }
    return touch === undefined;
  }

  #touches(orphaned: readonly ChainLink[], newest: ChainLink, oldest: ChainLink): 'overlap' | 'above' | 'below' | undefined {
    if (orphaned.some((head) => this.#orphans.has(head.hash))) return 'overlap';
    // Just above a counted stretch: its parent was orphaned, so it is on the branch that reorg left.
    if (this.#orphans.has(oldest.parentHash)) return 'above';
    // Just below one: the parent of a head a counted reorg orphaned (taken for the same reorg also
    // when a deeper one later orphans a counted reorg's fork point and this stream had nothing above it).
    for (const parent of this.#orphans.values()) if (parent === newest.hash) return 'below';
    return undefined;
  }
}
