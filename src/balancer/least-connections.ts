/**
 * Least connections: send the call to the candidate with the lowest load, where load is
 * `(inFlight + 1) / weight`: the requests it would have in flight after taking this one, per unit
 * of weight. Counting the new request makes a weight-3 node with one request in flight (2/3) win
 * over an idle weight-1 node (1/1), which is what the weights promise; plain `inFlight / weight`
 * would rank every idle node equal whatever its weight.
 *
 * Ties on load go to the faster node by latency EWMA, but only when it is clearly faster.
 * Candidates whose latency is within {@link latencyTolerance} of the fastest count as equally fast,
 * and among those the pick rotates in name order. Without that, a client making one call at a time
 * (every node idle at every pick) would send all of its traffic to whichever node measured a
 * fraction of a millisecond faster, or to the first name on a full tie, leaving the other nodes'
 * latency estimates stale and a single node carrying everything. Rotating among near-equals spreads
 * that traffic while a node that is really slower still gets only what the others cannot take.
 */

import { nextByName, usableCandidates, weightOf } from './candidates.js';
import type { BalancerStrategy, Candidate } from './strategy.js';

/**
 * Latencies within `fastest * relative + absoluteMs` of the fastest candidate count as a tie.
 * The absolute part keeps sub-millisecond noise (nodes on the same host or network) from deciding.
 */
export const latencyTolerance = { relative: 0.2, absoluteMs: 2 } as const;

export class LeastConnectionsStrategy implements BalancerStrategy {
  readonly kind = 'least-connections' as const;
  /** name of the last candidate chosen by rotation among tied candidates */
  #lastTied: string | undefined;

  pick<C extends Candidate>(candidates: readonly C[], exclude?: ReadonlySet<string>): C | undefined {
    const { members, standby } = usableCandidates(candidates, exclude);
    if (members.length <= 1) return members[0];

    // Lowest load. Equal rationals divide to the identical double, so `===` finds real ties.
    let lowestLoad = Infinity;
    let leastLoaded: C[] = [];
    for (const member of members) {
      const load = (Math.max(0, member.inFlight) + 1) / (standby ? 1 : weightOf(member));
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
