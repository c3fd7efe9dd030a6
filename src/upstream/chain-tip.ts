/**
 * The chain's tip as the nodes' newHeads streams announce it, and whether a node replaced it at
 * its own height: the most common reorg on Ethereum, one block replaced by another at the same
 * height. Nodes that still hold the replaced block are not behind by number, so routing by height
 * alone sent reads of the head and of recent blocks to them, and a client that had just been sent
 * the new block read the orphaned one and its logs (viem's `watchBlocks` reported it, web3.js kept
 * its log). While the replacement stands, those reads go to the nodes whose stream announced the
 * new block (node-picker.ts); nodes known only by their probes' numbers may be on either branch.
 * It stands until a higher block is announced.
 *
 * Only a node that replaces its own head counts: one that announces a block at the tip's height
 * that differs from the tip, having announced none there before, may be on a fork of its own or
 * late with the block a reorg replaced.
 */
import type { TrackedHead } from './head.js';

export class ChainTip {
  #number = -1n;
  #hash: string | undefined;
  /** the block at #number replaced another there */
  #replaced = false;

  /** A node's stream announced `head`; `previous` is the head it had announced before. */
  note(head: TrackedHead, previous: TrackedHead | undefined): void {
    if (head.number > this.#number) {
      this.#number = head.number;
      this.#hash = head.hash;
      this.#replaced = false;
    } else if (head.number === this.#number && head.hash !== this.#hash && previous?.number === head.number && previous.hash !== head.hash) {
      this.#hash = head.hash;
      this.#replaced = true;
    }
  }

  /** The hash of the block at `height` that replaced another there, while it is the tip; else undefined. */
  replacementAt(height: bigint): string | undefined {
    return this.#replaced && height === this.#number ? this.#hash : undefined;
  }
}
