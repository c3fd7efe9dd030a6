import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { Candidate } from '../../src/balancer/strategy.js';
import { WeightedRoundRobinStrategy } from '../../src/balancer/weighted-round-robin.js';

function weighted(weights: Record<string, number>): Candidate[] {
  return Object.entries(weights).map(([name, weight]) => ({ name, weight, inFlight: 0, latencyMs: 10 }));
}

function picks(strategy: WeightedRoundRobinStrategy, candidates: Candidate[], count: number, exclude?: Set<string>): string[] {
  return Array.from({ length: count }, () => strategy.pick(candidates, exclude)?.name ?? '-');
}

function counts(names: string[]): Record<string, number> {
  const result: Record<string, number> = {};
  for (const name of names) result[name] = (result[name] ?? 0) + 1;
  return result;
}

describe('weighted round robin', () => {
  it('interleaves weights 5, 1, 1 smoothly: a a b a c a a', () => {
    const strategy = new WeightedRoundRobinStrategy();
    const candidates = weighted({ a: 5, b: 1, c: 1 });
    assert.deepEqual(picks(strategy, candidates, 14).join(' '), 'a a b a c a a a a b a c a a');
  });

  it('gives the same sequence whatever the order of the list', () => {
    const forward = picks(new WeightedRoundRobinStrategy(), weighted({ a: 3, b: 2, c: 1 }), 12);
    const backward = picks(new WeightedRoundRobinStrategy(), weighted({ c: 1, b: 2, a: 3 }), 12);
    assert.deepEqual(backward, forward);
  });

  it('is exactly proportional over every window of sum(weights) picks', () => {
    const strategy = new WeightedRoundRobinStrategy();
    const candidates = weighted({ a: 4, b: 3, c: 2, d: 1 });
    for (let window = 0; window < 5; window++) {
      assert.deepEqual(counts(picks(strategy, candidates, 10)), { a: 4, b: 3, c: 2, d: 1 });
    }
  });

  it('supports fractional weights', () => {
    const strategy = new WeightedRoundRobinStrategy();
    assert.deepEqual(counts(picks(strategy, weighted({ a: 1.5, b: 0.5 }), 40)), { a: 30, b: 10 });
  });

  it('keeps proportions among the others while one is excluded, and its turn afterwards', () => {
    const strategy = new WeightedRoundRobinStrategy();
    const candidates = weighted({ a: 2, b: 1, c: 1 });
    assert.deepEqual(counts(picks(strategy, candidates, 30, new Set(['a']))), { b: 15, c: 15 });
    // a kept its (zero) current weight while excluded, so the smooth sequence resumes at once.
    assert.deepEqual(counts(picks(strategy, candidates, 8)), { a: 4, b: 2, c: 2 });
  });

  it('gives a node that joins or returns its share straight away', () => {
    const strategy = new WeightedRoundRobinStrategy();
    picks(strategy, weighted({ a: 1, b: 1 }), 7);
    assert.deepEqual(counts(picks(strategy, weighted({ a: 1, b: 1, c: 2 }), 40)), { a: 10, b: 10, c: 20 });
    picks(strategy, weighted({ a: 1, c: 2 }), 5);
    assert.deepEqual(counts(picks(strategy, weighted({ a: 1, b: 1, c: 2 }), 40)), { a: 10, b: 10, c: 20 });
  });
});
