/**
 * One set of cases every balancer strategy must pass (hono-router style): the rules that do not
 * depend on the strategy's ordering. Strategy-specific behaviour is in balancer-<kind>.test.ts.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { createStrategy, strategyKinds } from '../../src/balancer/strategy.js';
import type { BalancerStrategy, Candidate } from '../../src/balancer/strategy.js';

interface TestCandidate extends Candidate {
  inFlight: number;
}

function node(name: string, weight = 1, inFlight = 0, latencyMs = 10): TestCandidate {
  return { name, weight, inFlight, latencyMs };
}

/** Small deterministic PRNG (mulberry32) so the fuzz case is reproducible. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Picks `count` times; each pick stays in flight (load piles up) unless `release` is set. */
function pickMany(
  strategy: BalancerStrategy,
  candidates: TestCandidate[],
  count: number,
  options: { release?: boolean; exclude?: ReadonlySet<string> } = {},
): string[] {
  const picked: string[] = [];
  for (let i = 0; i < count; i++) {
    const chosen = strategy.pick(candidates, options.exclude);
    assert.ok(chosen, `pick ${i} returned undefined`);
    picked.push(chosen.name);
    if (options.release !== true) chosen.inFlight++;
  }
  return picked;
}

for (const kind of strategyKinds) {
  describe(`balancer strategy conformance: ${kind}`, () => {
    it('reports its kind and creates independent instances', () => {
      const strategy = createStrategy(kind);
      assert.equal(strategy.kind, kind);
      assert.notEqual(createStrategy(kind), strategy);
    });

    it('returns undefined when there is nothing to pick', () => {
      const strategy = createStrategy(kind);
      assert.equal(strategy.pick([]), undefined);
      assert.equal(strategy.pick([], new Set(['a'])), undefined);
      assert.equal(strategy.pick([node('a'), node('b')], new Set(['a', 'b'])), undefined);
      assert.equal(strategy.pick([node('a', 0)], new Set(['a'])), undefined);
    });

    it('returns the very candidate object it was given', () => {
      const strategy = createStrategy(kind);
      const candidates = [node('a'), node('b')];
      for (let i = 0; i < 4; i++) {
        const chosen = strategy.pick(candidates);
        assert.ok(chosen !== undefined && candidates.includes(chosen));
      }
    });

    it('never picks an excluded candidate', () => {
      const strategy = createStrategy(kind);
      const candidates = [node('a', 5), node('b', 1), node('c', 1)];
      const exclude = new Set(['a', 'c']);
      for (let i = 0; i < 30; i++) assert.equal(strategy.pick(candidates, exclude)?.name, 'b');
      // Names in exclude that are not candidates are ignored.
      assert.ok(strategy.pick(candidates, new Set(['x', 'y'])) !== undefined);
    });

    it('never picks an excluded or absent candidate while the list changes (fuzz)', () => {
      const strategy = createStrategy(kind);
      const random = prng(42);
      const names = ['a', 'b', 'c', 'd', 'e', 'f'];
      for (let round = 0; round < 2000; round++) {
        const candidates = names
          .filter(() => random() < 0.6)
          .map((name) => node(name, Math.floor(random() * 4), Math.floor(random() * 5), random() * 50));
        if (random() < 0.5) candidates.reverse();
        const exclude = new Set(names.filter(() => random() < 0.3));
        const allowed = candidates.filter((candidate) => !exclude.has(candidate.name));
        const chosen = strategy.pick(candidates, exclude);
        if (allowed.length === 0) {
          assert.equal(chosen, undefined, `round ${round}`);
          continue;
        }
        assert.ok(chosen !== undefined && allowed.includes(chosen), `round ${round}: picked ${chosen?.name}`);
        if (allowed.some((candidate) => candidate.weight > 0)) {
          assert.ok(chosen.weight > 0, `round ${round}: picked standby ${chosen.name} over a weighted one`);
        }
      }
    });

    it('does not mutate the candidates or the list', () => {
      const strategy = createStrategy(kind);
      const candidates = Object.freeze([Object.freeze(node('a', 2, 1)), Object.freeze(node('b', 1, 0))]);
      const exclude = new Set(['b']);
      for (let i = 0; i < 5; i++) strategy.pick(candidates);
      assert.equal(strategy.pick(candidates, exclude)?.name, 'a');
      assert.deepEqual([...exclude], ['b']);
    });

    it('picks every equal candidate within one rotation when each call finishes before the next', () => {
      const strategy = createStrategy(kind);
      const candidates = [node('c'), node('a'), node('d'), node('b')];
      const picked = pickMany(strategy, candidates, candidates.length, { release: true });
      assert.deepEqual([...picked].sort(), ['a', 'b', 'c', 'd']);
    });

    it('eventually picks every candidate of unequal weight while load piles up', () => {
      const strategy = createStrategy(kind);
      const candidates = [node('a', 1), node('b', 2), node('c', 5, 0, 1)];
      const picked = pickMany(strategy, candidates, 8 * 3);
      assert.deepEqual(new Set(picked), new Set(['a', 'b', 'c']));
    });

    it('never picks a weight-0 candidate while a weighted one is usable', () => {
      const strategy = createStrategy(kind);
      const candidates = [node('a', 0), node('b', 1), node('c', 1)];
      assert.ok(!pickMany(strategy, candidates, 50).includes('a'));
      assert.ok(!pickMany(strategy, candidates, 50, { release: true }).includes('a'));
      assert.ok(!pickMany(strategy, candidates, 20, { exclude: new Set(['b']) }).includes('a'));
      // Weights that are not positive finite numbers count as 0.
      const odd = [node('n', Number.NaN), node('m', -1), node('i', Infinity), node('z', 1)];
      assert.deepEqual(new Set(pickMany(strategy, odd, 10)), new Set(['z']));
    });

    it('falls back to weight-0 candidates when no weighted one is left, sharing among them', () => {
      const strategy = createStrategy(kind);
      const candidates = [node('a', 0), node('b', 0), node('c', 3)];
      const picked = pickMany(strategy, candidates, 6, { exclude: new Set(['c']) });
      assert.deepEqual(new Set(picked), new Set(['a', 'b']));
      const allStandby = [node('x', 0), node('y', 0), node('z', 0)];
      assert.deepEqual(new Set(pickMany(strategy, allStandby, 3, { release: true })), new Set(['x', 'y', 'z']));
    });
  });
}
