/**
 * Which node a call goes to: the balancer's pick among the nodes that serve, narrowed to those
 * known to have the block the call names, or to those at the highest head for reads of the head
 * and of recent blocks.
 */
import type { BalancerStrategy } from '../balancer/strategy.js';
import type { UpstreamPool } from '../upstream/pool.js';
import type { Upstream } from '../upstream/upstream.js';

export class NodePicker {
  readonly #pool: UpstreamPool;
  readonly #strategy: BalancerStrategy;
  /** health.maxLagBlocks: reads of blocks this close to the highest head go to nodes at it */
  readonly #recentBlocks: bigint;

  constructor(pool: UpstreamPool, strategy: BalancerStrategy, maxLagBlocks: number) {
    this.#pool = pool;
    this.#strategy = strategy;
    this.#recentBlocks = BigInt(maxLagBlocks);
  }

  /**
   * Serving nodes first (usable primaries, else usable fallbacks); when none is usable, any healthy
   * one (a lagging node beats no answer). With `minHead`, nodes known to have that block are
   * preferred; `strict` requires it. For a read of "latest", of no block, or of a block within
   * health.maxLagBlocks of the highest head, nodes at that head are preferred. Nodes that far
   * behind serve, and one a block or two behind answered state from before a transaction its
   * client had just seen mined; web3.js, filling in a logs subscription's past with eth_getLogs up
   * to "latest", lost the logs of the blocks it lacked; and one still on a branch a reorg replaced
   * answered reads of those heights with the orphaned blocks; so did one at the same height, on
   * a block another node's stream replaced (chain-tip.ts). Older blocks are the same on every node
   * that has them.
   *
   * `orFallback`: for a plain call's retry, which goes to a usable fallback once every serving
   * primary has been tried (a primary that answers its probes but lets some method hang or fail
   * kept every attempt of such a call, and the fallback never took one). Nothing else widens so:
   * a second opinion on a null, a filter or a send would leave a paid fallback serving a primary's
   * traffic, or the client's writer node (whose pending nonce it reads) behind.
   */
  pick(exclude: ReadonlySet<string>, minHead?: bigint, strict = false, orFallback = false): Upstream | undefined {
    const serving = this.#pool.serving();
    let candidates = serving.length > 0 ? serving : this.#pool.upstreams.filter((upstream) => upstream.healthy);
    if (orFallback && exclude.size > 0 && serving.length > 0 && serving.every((upstream) => exclude.has(upstream.name))) {
      const others = this.#pool.usable().filter((upstream) => !exclude.has(upstream.name));
      if (others.length > 0) candidates = others;
    }
    const highest = highestHead(candidates);
    let block = minHead;
    if (block !== undefined && block > highest) {
      // Only a node that went away had it: none here has it yet.
      if (strict || block <= this.#pool.highestSeen) return undefined;
      // No node is known to have it (heads are a probe interval old at worst): the nodes at the
      // highest head are likeliest to by now.
      block = undefined;
    }
    // Reads of the head and of recent blocks go to the nodes at the highest head, older ones to any
    // node that has them.
    const needed = block === undefined || block >= highest - this.#recentBlocks ? highest : block;
    // Nodes in step, the usual case, need no new list.
    if (anyBelow(candidates, needed)) {
      const ahead = candidates.filter((upstream) => upstream.headNumber >= needed && !exclude.has(upstream.name));
      // Else, for a read of a block, a node that has it; nodes behind it would answer null, an
      // error, or logs without that block's.
      if (ahead.length > 0 || strict) candidates = ahead;
      else if (block !== undefined) candidates = candidates.filter((upstream) => upstream.headNumber >= block);
    }
    // A node replaced the block at the highest head (chain-tip.ts): nodes at that height may still
    // hold the replaced one.
    const replacement = needed === highest ? this.#pool.tip.replacementAt(highest) : undefined;
    if (replacement !== undefined) {
      const onTip = candidates.filter((upstream) => upstream.headHash === replacement && !exclude.has(upstream.name));
      if (onTip.length > 0) candidates = onTip;
    }
    return this.#strategy.pick(candidates, exclude);
  }
}

export function highestHead(upstreams: readonly Upstream[]): bigint {
  let highest = -1n;
  for (const upstream of upstreams) if (upstream.headNumber > highest) highest = upstream.headNumber;
  return highest;
}

function anyBelow(upstreams: readonly Upstream[], head: bigint): boolean {
  for (const upstream of upstreams) if (upstream.headNumber < head) return true;
  return false;
}
