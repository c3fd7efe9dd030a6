/**
 * Balancer strategies: how a plain call chooses among healthy upstreams.
 *
 * Every strategy implements the same small interface and is run through one shared conformance test
 * (test/unit/balancer-conformance.test.ts), so they agree on the rules that are not about ordering:
 *
 * - only candidates in the list passed to this call are returned, never one named in `exclude`;
 * - `undefined` when nothing is left to pick;
 * - a candidate with weight 0 (or a weight that is not a positive finite number) is a standby: it is
 *   picked only when no positive-weight candidate is left, and standbys then share the load equally.
 *   Draining a node with weight 0 therefore never turns a retry into an error.
 *
 * Strategies keep a little state between calls (a rotation position, current weights), keyed by
 * candidate name so that it survives the candidate list changing as upstreams come and go.
 */

import { LeastConnectionsStrategy } from './least-connections.js';
import { RoundRobinStrategy } from './round-robin.js';
import { WeightedRoundRobinStrategy } from './weighted-round-robin.js';

export interface Candidate {
  readonly name: string;
  readonly weight: number;
  /** requests in flight */
  readonly inFlight: number;
  /** latency EWMA in ms */
  readonly latencyMs: number;
}

export type StrategyKind = 'least-connections' | 'round-robin' | 'weighted-round-robin';

export const strategyKinds: readonly StrategyKind[] = ['least-connections', 'round-robin', 'weighted-round-robin'];

export interface BalancerStrategy {
  readonly kind: StrategyKind;
  /** candidates are already healthy; exclude = names already tried for this call */
  pick<C extends Candidate>(candidates: readonly C[], exclude?: ReadonlySet<string>): C | undefined;
}

export function createStrategy(kind: StrategyKind): BalancerStrategy {
  switch (kind) {
    case 'least-connections':
      return new LeastConnectionsStrategy();
    case 'round-robin':
      return new RoundRobinStrategy();
    case 'weighted-round-robin':
      return new WeightedRoundRobinStrategy();
    default: {
      // Reached only from untyped callers; config validation should have caught it.
      const unknownKind: never = kind;
      throw new TypeError(`unknown balancer strategy "${String(unknownKind)}"`);
    }
  }
}
