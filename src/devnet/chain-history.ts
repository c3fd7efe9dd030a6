import type { Hex } from 'viem';

/**
 * Everything needed to mine one block again, identically, on any node: the devnet keeps one
 * record per canonical block so a restarted or released node can replay the chain.
 * Block N is `history[N - 1]`; genesis (block 0) comes from the anvil command line.
 */
export interface BlockRecord {
  readonly number: number;
  /** Seconds; passed to `evm_mine` so every node seals the same header. */
  readonly timestamp: number;
  /** Signed transactions in submission order (anvil runs with `--order fifo`). */
  readonly txs: readonly Hex[];
  /** The subset queued by callers (`queueRawTransaction`); re-included when a reorg orphans the block. */
  readonly callerTxs: readonly Hex[];
  /** Nonce of the devnet's traffic account after this block; a reorg rewinds the signer to it. */
  readonly trafficNonceAfter: number;
  /** Filled in by the first node that mines the block; later nodes must match it. */
  hash?: Hex;
}

/**
 * Timestamp of the next block: wall-clock seconds, but always after the parent (anvil accepts
 * an equal timestamp, but clients expect strictly increasing ones) and at least
 * `minimum` (a reorg uses that to make the replacement block differ from the one it replaces).
 */
export function nextTimestamp(parentTimestamp: number, nowSeconds: number, minimum = 0): number {
  return Math.max(parentTimestamp + 1, Math.floor(nowSeconds), minimum);
}

/** Throws unless `depth` blocks can be replaced; block 1 (the emitter deployment) always stays. */
export function assertReorgDepth(depth: number, chainLength: number): void {
  if (!Number.isInteger(depth) || depth < 1) {
    throw new RangeError(`reorg depth must be a positive integer, got ${depth}`);
  }
  if (depth >= chainLength) {
    throw new RangeError(
      `reorg depth ${depth} would replace block 1 (the emitter deployment); the chain has ${chainLength} blocks`,
    );
  }
}
