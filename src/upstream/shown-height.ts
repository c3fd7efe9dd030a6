/**
 * The highest height at which some node of the pool has shown a block: a head of its newHeads
 * stream, a block it answered a read with, or its latest block. A node's word alone
 * (`eth_blockNumber`) is taken as its head up to health.maxLagBlocks above it; a head further
 * ahead than that is one that takes the other nodes out of rotation as lagging, and stands only
 * with a block to show for it. Believed unseen, one node whose eth_blockNumber ran 20 blocks ahead
 * of its own blocks took every other node out, took every call, and had clients told of a head no
 * node had.
 *
 * A lead is measured from the highest block shown or the highest head another node is known at,
 * whichever is higher: on a chain faster than the probes, an honest node's answer between two
 * probes ran past the last block shown by more than the margin, and was not believed; a client
 * polling eth_blockNumber was then answered with a head below one it had been told.
 */
/** A node as the lead is measured against it: its head as evmux knows it. */
export interface NodeHead {
  readonly headNumber: bigint;
}

export class ShownHeight {
  #height = -1n;
  readonly #margin: bigint;
  readonly #nodes: () => readonly NodeHead[];

  /** `margin`: health.maxLagBlocks, the lead that takes no node out of rotation; `nodes`: the pool's. */
  constructor(margin: number, nodes: () => readonly NodeHead[] = () => []) {
    this.#margin = BigInt(margin);
    this.#nodes = nodes;
  }

  /** A node showed a block at `height`. */
  note(height: bigint): void {
    if (height > this.#height) this.#height = height;
  }

  /** Whether a head of `height` said by `node` must be shown as a block before it is believed. */
  needsProof(height: bigint, node?: NodeHead): boolean {
    let from = this.#height;
    for (const other of this.#nodes()) if (other !== node && other.headNumber > from) from = other.headNumber;
    return height > from + this.#margin;
  }
}
