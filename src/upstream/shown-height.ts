/**
 * The highest height at which some node of the pool has shown a block: a head of its newHeads
 * stream, a block it answered a read with, or its latest block. A node's word alone
 * (`eth_blockNumber`) is taken as its head up to health.maxLagBlocks above it; a head further
 * ahead than that is one that takes the other nodes out of rotation as lagging, and stands only
 * with a block to show for it. Believed unseen, one node whose eth_blockNumber ran 20 blocks ahead
 * of its own blocks took every other node out, took every call, and had clients told of a head no
 * node had.
 */
export class ShownHeight {
  #height = -1n;
  readonly #margin: bigint;

  /** `margin`: health.maxLagBlocks, the lead that takes no node out of rotation. */
  constructor(margin: number) {
    this.#margin = BigInt(margin);
  }

  /** A node showed a block at `height`. */
  note(height: bigint): void {
    if (height > this.#height) this.#height = height;
  }

  /** Whether a head of `height` said by a node must be shown as a block before it is believed. */
  needsProof(height: bigint): boolean {
    return height > this.#height + this.#margin;
  }
}
