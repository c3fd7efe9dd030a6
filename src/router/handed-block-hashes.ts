/**
 * The block hashes block filters handed over lately, each with the node that handed it over: that
 * node has the block. A block filter's answer is hashes only, and how many there are does not tell
 * the node's head (a reorg's blocks replace others at the same heights), so a read of such a block
 * by hash that a node a block behind answered null (or "not found") had no node known to be ahead
 * to ask until the filter's node's next probe: an HTTP block watcher (eth_newBlockFilter, then
 * eth_getBlockByHash) got "not found" for the block it was just told of. The call router asks the
 * node that handed the hash over instead (CallRouter.#secondOpinion), once.
 *
 * Only a null or "not found" answer looks here, and only for a read that may name a block by hash,
 * so reads of hashes no filter handed over, and receipt polling, cost no more than before.
 */
import { ParamsJson } from '../upstream/request-frame.js';
import type { Upstream } from '../upstream/upstream.js';
import { isHash } from '../jsonrpc/hex.js';
import { mayNameBlockHash, namedBlockHash } from './block-requirement.js';

/**
 * Hashes remembered at most, the oldest forgotten first: a hash is read within moments of its
 * hand-over, and by then the nodes behind have the block. Block filters on every node hand over
 * each block's hash, so this many is this many blocks (about 1 minute of 250 ms blocks).
 */
export const HANDED_HASHES_MAX = 256;

export class HandedBlockHashes {
  readonly #max: number;
  /** hash (lower case) -> the node that handed it over last; insertion order is the order of hand-overs */
  readonly #nodes = new Map<string, Upstream>();

  constructor(max = HANDED_HASHES_MAX) {
    this.#max = max;
  }

  /** `upstream` handed these (a block filter's answer) over to a client. */
  note(upstream: Upstream, hashes: readonly unknown[]): void {
    for (const hash of hashes) {
      if (!isHash(hash)) continue;
      const key = hash.toLowerCase();
      this.#nodes.delete(key);
      this.#nodes.set(key, upstream);
    }
    for (const oldest of this.#nodes.keys()) {
      if (this.#nodes.size <= this.#max) return;
      this.#nodes.delete(oldest);
    }
  }

  /**
   * The node that handed over the block a read of `method` names by hash, if a block filter handed
   * it over lately. `params` as parsed, or as the client wrote them (parsed only here).
   */
  nodeFor(method: string, params: unknown): Upstream | undefined {
    if (this.#nodes.size === 0 || !mayNameBlockHash(method)) return undefined;
    const parsed: unknown = params instanceof ParamsJson ? JSON.parse(params.text) : params;
    const hash = namedBlockHash(method, parsed);
    return hash === undefined ? undefined : this.#nodes.get(hash);
  }
}
