import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { LeastConnectionsStrategy, latencyTolerance } from '../../src/balancer/least-connections.js';
import type { Candidate } from '../../src/balancer/strategy.js';

function node(name: string, inFlight: number, weight = 1, latencyMs = 10): Candidate {
  return { name, weight, inFlight, latencyMs };
}

describe('least connections', () => {
  it('picks the candidate with the fewest requests in flight', () => {
    const strategy = new LeastConnectionsStrategy();
    assert.equal(strategy.pick([node('a', 3), node('b', 1), node('c', 2)])?.name, 'b');
    assert.equal(strategy.pick([node('a', 0, 1, 90), node('b', 1, 1, 1)])?.name, 'a');
  });

  it('uses weight as a capacity multiplier', () => {
    const strategy = new LeastConnectionsStrategy();
    // 2 / 3 = 0.67 beats 1 / 1 = 1: the weight-3 node takes a third request first.
    assert.equal(strategy.pick([node('a', 1, 1), node('b', 2, 3)])?.name, 'b');
    // 4 / 3 = 1.33 loses to 1 / 1 = 1.
    assert.equal(strategy.pick([node('a', 1, 1), node('b', 4, 3)])?.name, 'a');
    // An idle node goes first, whatever the weights.
    assert.equal(strategy.pick([node('a', 0, 1), node('b', 1, 3)])?.name, 'a');
    // A fractional weight is a capacity below 1: 1 / 0.5 = 2 ties with 2 / 1 = 2, and the tie goes
    // to the clearly faster node.
    assert.equal(strategy.pick([node('a', 1, 0.5, 50), node('b', 2, 1, 5)])?.name, 'b');
  });

  it('shares a one-at-a-time client\'s calls by weight among idle nodes of near-equal latency, passing over a clearly slower one', () => {
    const strategy = new LeastConnectionsStrategy();
    const count = (candidates: Candidate[], picks: number): Record<string, number> => {
      const counts: Record<string, number> = {};
      for (let i = 0; i < picks; i++) {
        const name = strategy.pick(candidates)!.name;
        counts[name] = (counts[name] ?? 0) + 1;
      }
      return counts;
    };
    assert.deepEqual(count([node('heavy', 0, 3, 10), node('b', 0, 1, 11), node('c', 0, 1, 10)], 50), { heavy: 30, b: 10, c: 10 });
    // Before, (0 + 1) / 3 beat (0 + 1) / 1 and the heavy node took every call, however slow.
    assert.deepEqual(count([node('heavy', 0, 3, 300), node('b', 0, 1, 1), node('c', 0, 1, 1)], 10), { b: 5, c: 5 });
  });

  it('spreads a steady concurrent load in proportion to the weights', () => {
    const strategy = new LeastConnectionsStrategy();
    const candidates = [
      { name: 'a', weight: 1, inFlight: 0, latencyMs: 10 },
      { name: 'b', weight: 3, inFlight: 0, latencyMs: 10 },
    ];
    for (let i = 0; i < 40; i++) {
      const chosen = strategy.pick(candidates);
      assert.ok(chosen);
      chosen.inFlight++;
    }
    assert.deepEqual(
      candidates.map((candidate) => candidate.inFlight),
      [10, 30],
    );
  });

  it('breaks a load tie by clearly lower latency', () => {
    const strategy = new LeastConnectionsStrategy();
    const candidates = [node('a', 1, 1, 40), node('b', 1, 1, 12), node('c', 2, 1, 1)];
    for (let i = 0; i < 5; i++) assert.equal(strategy.pick(candidates)?.name, 'b');
  });

  it('rotates in name order among idle candidates of near-equal latency', () => {
    const strategy = new LeastConnectionsStrategy();
    // 10, 11.5 and 12 ms are within 20% + 2 ms of each other; 30 ms is clearly slower.
    const candidates = [node('c', 0, 1, 12), node('a', 0, 1, 10), node('slow', 0, 1, 30), node('b', 0, 1, 11.5)];
    const picked = Array.from({ length: 6 }, () => strategy.pick(candidates)?.name);
    assert.deepEqual(picked, ['a', 'b', 'c', 'a', 'b', 'c']);
  });

  it('treats latencies just outside the tolerance as different', () => {
    const strategy = new LeastConnectionsStrategy();
    const fastest = 100;
    const limit = fastest * (1 + latencyTolerance.relative) + latencyTolerance.absoluteMs;
    const candidates = [node('a', 0, 1, limit + 0.01), node('b', 0, 1, fastest)];
    for (let i = 0; i < 4; i++) assert.equal(strategy.pick(candidates)?.name, 'b');
    const within = [node('a', 0, 1, limit), node('b', 0, 1, fastest)];
    assert.deepEqual(
      [strategy.pick(within)?.name, strategy.pick(within)?.name],
      ['a', 'b'],
    );
  });

  it('counts an unmeasured latency as fastest so a fresh node gets traffic', () => {
    const strategy = new LeastConnectionsStrategy();
    assert.equal(strategy.pick([node('a', 0, 1, 50), node('fresh', 0, 1, Number.NaN)])?.name, 'fresh');
  });

  it('keeps rotating fairly when the tied set changes between calls', () => {
    const strategy = new LeastConnectionsStrategy();
    assert.equal(strategy.pick([node('a', 0), node('b', 0), node('c', 0)])?.name, 'a');
    assert.equal(strategy.pick([node('a', 0), node('b', 0), node('c', 0)])?.name, 'b');
    // b is now busy: the rotation continues after b among those still tied.
    assert.equal(strategy.pick([node('a', 0), node('b', 4), node('c', 0)])?.name, 'c');
    assert.equal(strategy.pick([node('a', 0), node('b', 4), node('c', 0)])?.name, 'a');
  });
});
