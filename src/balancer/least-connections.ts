/**
 * Least connections: send the call to the candidate with the lowest load, `inFlight / weight`: the
 * requests it has in flight per unit of weight. Under concurrent load that keeps each node's share
 * in proportion to its weight.
 *
 * Ties on load (every node idle, as for a client making one call at a time) go to the faster node
 * by latency EWMA, but only when it is clearly faster. Candidates whose latency is within
 * {@link latencyTolerance} of the fastest count as equally fast, and among those the pick rotates:
 * in name order when their weights are equal, else by weight (smooth weighted round robin, so
 * weights 3, 1, 1 take 3, 1, 1 of every 5). Without the rotation, a client making one call at a time
 * would send all of its traffic to whichever node measured a fraction of a millisecond faster, or
 * to the first name on a full tie, leaving the other nodes' estimates stale and a single node
 * carrying everything. Counting the request being placed, `(inFlight + 1) / weight`, ranked idle
 * nodes of unequal weights apart: the heaviest took every call of such a client, however slow it
 * answered.
 */

import { nextByName, usableCandidates, weightOf } from './candidates.js';
import type { BalancerStrategy, Candidate } from './strategy.js';
import { WeightedRoundRobinStrategy } from './weighted-round-robin.js';

/**
 * Latencies within `fastest * relative + absoluteMs` of the fastest candidate count as a tie.
 * The absolute part keeps sub-millisecond noise (nodes on the same host or network) from deciding.
 */
export const latencyTolerance = { relative: 0.2, absoluteMs: 2 } as const;

export class LeastConnectionsStrategy implements BalancerStrategy {
  readonly kind = 'least-connections' as const;
  /** name of the last candidate chosen by rotation among tied candidates of equal weight */
  #lastTied: string | undefined;
  /** the rotation among tied candidates of unequal weights */
  readonly #weighted = new WeightedRoundRobinStrategy();

  pick<C extends Candidate>(candidates: readonly C[], exclude?: ReadonlySet<string>): C | undefined {
    const { members, standby } = usableCandidates(candidates, exclude);
    if (members.length <= 1) return members[0];

    // Lowest load. Equal rationals divide to the identical double, so `===` finds real ties.
    let lowestLoad = Infinity;
    let leastLoaded: C[] = [];
    for (const member of members) {
      const load = Math.max(0, member.inFlight) / (standby ? 1 : weightOf(member));
      if (load < lowestLoad) {
        lowestLoad = load;
        leastLoaded = [member];
      } else if (load === lowestLoad) {
        leastLoaded.push(member);
      }
    }
    if (leastLoaded.length === 1) return leastLoaded[0];

    let fastest = Infinity;
    for (const member of leastLoaded) fastest = Math.min(fastest, latencyOf(member));
    const limit = fastest * (1 + latencyTolerance.relative) + latencyTolerance.absoluteMs;
    const tied = leastLoaded.filter((member) => latencyOf(member) <= limit);

    if (!standby && !sameWeight(tied)) return this.#weighted.pick(tied);
    const chosen = nextByName(tied, this.#lastTied);
    // A retry's pick (nodes excluded) leaves the rotation where it was: moved on by it, the next
    // first attempt wrapped round to the node the retry had just left.
    if (chosen !== undefined && (exclude === undefined || exclude.size === 0)) this.#lastTied = chosen.name;
    return chosen;
  }
}

/** An unmeasured (NaN) or negative estimate counts as 0 so that a fresh node gets measured. */
function latencyOf(candidate: Candidate): number {
  const { latencyMs } = candidate;
  return latencyMs > 0 ? latencyMs : 0;
}

function sameWeight(members: readonly Candidate[]): boolean {
  const weight = weightOf(members[0]!);
  for (const member of members) if (weightOf(member) !== weight) return false;
  return true;
}
