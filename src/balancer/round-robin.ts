/**
 * Round robin: plain rotation in name order, ignoring weights and load (weight 0 still marks a
 * standby, as for every strategy).
 *
 * The position is remembered as the name of the last pick, not an index, so the rotation stays fair
 * when the candidate list changes between calls: a node that drops out is skipped, one that
 * (re)joins takes its place in name order, and a list passed in a different order changes nothing.
 */

import { nextByName, usableCandidates } from './candidates.js';
import type { BalancerStrategy, Candidate } from './strategy.js';

export class RoundRobinStrategy implements BalancerStrategy {
  readonly kind = 'round-robin' as const;
  #last: string | undefined;

  pick<C extends Candidate>(candidates: readonly C[], exclude?: ReadonlySet<string>): C | undefined {
    const { members } = usableCandidates(candidates, exclude);
    const chosen = nextByName(members, this.#last);
    if (chosen !== undefined) this.#last = chosen.name;
    return chosen;
  }
}
