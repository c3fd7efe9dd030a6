/**
 * Weighted round robin, smooth (nginx style): each pick adds every member's weight to its current
 * weight, chooses the highest current weight and subtracts the total weight from the winner. Weights
 * 5, 1, 1 give `a a b a c a a`, interleaved rather than `a a a a a b c`, and each window of
 * sum(weights) picks is exactly proportional to the weights when the members stay the same.
 *
 * Current weights are kept per name. Only the members of a pick take part in it, so a candidate
 * excluded for a retry keeps its place; a name absent from the candidate list is forgotten and
 * starts again at 0 when it returns, so state stays bounded by the live candidates. Ties go to the
 * lower name so the sequence does not depend on the order of the list.
 */

import { usableCandidates, weightOf } from './candidates.js';
import type { BalancerStrategy, Candidate } from './strategy.js';

export class WeightedRoundRobinStrategy implements BalancerStrategy {
  readonly kind = 'weighted-round-robin' as const;
  #current = new Map<string, number>();

  pick<C extends Candidate>(candidates: readonly C[], exclude?: ReadonlySet<string>): C | undefined {
    this.#forgetAbsent(candidates);
    const { members, standby } = usableCandidates(candidates, exclude);

    let total = 0;
    let chosen: C | undefined;
    let chosenCurrent = -Infinity;
    for (const member of members) {
      const weight = standby ? 1 : weightOf(member);
      const current = (this.#current.get(member.name) ?? 0) + weight;
      this.#current.set(member.name, current);
      total += weight;
      if (current > chosenCurrent || (current === chosenCurrent && chosen !== undefined && member.name < chosen.name)) {
        chosen = member;
        chosenCurrent = current;
      }
    }
    if (chosen !== undefined) this.#current.set(chosen.name, chosenCurrent - total);
    return chosen;
  }

  #forgetAbsent(candidates: readonly Candidate[]): void {
    // Cheap check first: with stable names the map never holds more entries than the list.
    if (this.#current.size <= candidates.length) return;
    const present = new Set(candidates.map((candidate) => candidate.name));
    for (const name of this.#current.keys()) {
      if (!present.has(name)) this.#current.delete(name);
    }
  }
}
