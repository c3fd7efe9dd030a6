/**
 * Helpers shared by the balancer strategies, so that they agree on exclusion, weight-0 standbys
 * and name-order rotation.
 */

import type { Candidate } from './strategy.js';

/** The weight a strategy balances by: positive finite weights as given, anything else is 0. */
export function weightOf(candidate: Candidate): number {
  const { weight } = candidate;
  return Number.isFinite(weight) && weight > 0 ? weight : 0;
}

export interface Pool<C extends Candidate> {
  /** candidates this call may pick from, in the caller's order */
  readonly members: readonly C[];
  /**
   * True when every positive-weight candidate is excluded or absent and only weight-0 standbys are
   * left; the strategy then treats each member as weight 1.
   */
  readonly standby: boolean;
}

/** The candidates a pick may choose from: positive-weight ones not excluded, else the standbys. */
export function usableCandidates<C extends Candidate>(
  candidates: readonly C[],
  exclude: ReadonlySet<string> | undefined,
): Pool<C> {
  // The usual pick (nothing excluded, no standbys) takes the caller's array as it is: one per call.
  if (allEligible(candidates, exclude)) return { members: candidates, standby: false };
  const weighted: C[] = [];
  const standbys: C[] = [];
  for (const candidate of candidates) {
    if (exclude?.has(candidate.name) === true) continue;
    if (weightOf(candidate) > 0) weighted.push(candidate);
    else standbys.push(candidate);
  }
  return weighted.length > 0 ? { members: weighted, standby: false } : { members: standbys, standby: true };
}

function allEligible(candidates: readonly Candidate[], exclude: ReadonlySet<string> | undefined): boolean {
  for (const candidate of candidates) {
    if (exclude?.has(candidate.name) === true || weightOf(candidate) <= 0) return false;
  }
  return true;
}

/**
 * The member whose name comes next after `previous` in name order, wrapping around; the first name
 * when there is no previous pick. Rotating by name rather than by index keeps the rotation fair
 * when members are added, removed, reordered or excluded between calls.
 */
export function nextByName<C extends Candidate>(members: readonly C[], previous: string | undefined): C | undefined {
  let first: C | undefined;
  let next: C | undefined;
  for (const member of members) {
    if (first === undefined || member.name < first.name) first = member;
    if (previous !== undefined && member.name > previous && (next === undefined || member.name < next.name)) {
      next = member;
    }
  }
  return next ?? first;
}
