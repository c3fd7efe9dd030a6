import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { RoundRobinStrategy } from '../../src/balancer/round-robin.js';
import type { Candidate } from '../../src/balancer/strategy.js';

function nodes(...names: string[]): Candidate[] {
  return names.map((name) => ({ name, weight: 1, inFlight: 0, latencyMs: 10 }));
}

function picks(strategy: RoundRobinStrategy, candidates: Candidate[], count: number, exclude?: Set<string>): string[] {
  return Array.from({ length: count }, () => strategy.pick(candidates, exclude)?.name ?? '-');
}

describe('round robin', () => {
  it('rotates in name order whatever the order of the list', () => {
    const strategy = new RoundRobinStrategy();
    assert.deepEqual(picks(strategy, nodes('b', 'c', 'a'), 4), ['a', 'b', 'c', 'a']);
    assert.deepEqual(picks(strategy, nodes('c', 'a', 'b'), 3), ['b', 'c', 'a']);
  });

  it('ignores load, latency and (positive) weights', () => {
    const strategy = new RoundRobinStrategy();
    const candidates: Candidate[] = [
      { name: 'a', weight: 9, inFlight: 50, latencyMs: 900 },
      { name: 'b', weight: 1, inFlight: 0, latencyMs: 1 },
    ];
    assert.deepEqual(picks(strategy, candidates, 4), ['a', 'b', 'a', 'b']);
  });

  it('continues the rotation when nodes leave and join', () => {
    const strategy = new RoundRobinStrategy();
    assert.deepEqual(picks(strategy, nodes('a', 'b', 'c'), 2), ['a', 'b']);
    // b (the last pick) leaves: the rotation goes on with c, not back to a.
    assert.deepEqual(picks(strategy, nodes('a', 'c'), 2), ['c', 'a']);
    // d joins after c in name order and takes its turn.
    assert.deepEqual(picks(strategy, nodes('a', 'b', 'c', 'd'), 4), ['b', 'c', 'd', 'a']);
  });

  it('skips excluded names without restarting the rotation', () => {
    const strategy = new RoundRobinStrategy();
    const candidates = nodes('a', 'b', 'c');
    assert.deepEqual(picks(strategy, candidates, 1), ['a']);
    assert.deepEqual(picks(strategy, candidates, 1, new Set(['b'])), ['c']);
    assert.deepEqual(picks(strategy, candidates, 2), ['a', 'b']);
  });
});
