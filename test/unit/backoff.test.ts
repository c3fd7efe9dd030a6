import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { backoffDelay } from '../../src/upstream/backoff.js';

const options = { baseMs: 100, maxMs: 5_000 };
const lowest = (): number => 0;
const highest = (): number => 1 - Number.EPSILON;

describe('backoffDelay', () => {
  it('doubles the ceiling with every attempt up to maxMs', () => {
    const ceilings = [0, 1, 2, 3, 4, 5, 6, 7, 30].map((attempt) => backoffDelay(attempt, options, highest));
    assert.deepEqual(ceilings, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
  });

  it('draws uniformly from zero to the ceiling (full jitter)', () => {
    assert.equal(backoffDelay(3, options, lowest), 0);
    assert.equal(backoffDelay(3, options, () => 0.5), 400);
    assert.equal(backoffDelay(3, options, () => 0.25), 200);
  });

  it('spreads Math.random delays over the whole range', () => {
    const delays = Array.from({ length: 2_000 }, () => backoffDelay(2, options));
    assert.ok(delays.every((delay) => Number.isInteger(delay) && delay >= 0 && delay <= 400));
    const mean = delays.reduce((sum, delay) => sum + delay, 0) / delays.length;
    // Uniform on [0, 400] has mean 200 and standard error about 2.6 over 2,000 draws.
    assert.ok(mean > 180 && mean < 220, `mean ${mean}`);
    assert.ok(delays.some((delay) => delay < 40));
    assert.ok(delays.some((delay) => delay > 360));
  });

  it('stays finite and in range for huge, negative and odd attempts', () => {
    assert.equal(backoffDelay(1e9, options, highest), 5000);
    assert.equal(backoffDelay(Infinity, options, highest), 5000);
    assert.equal(backoffDelay(-3, options, highest), 100);
    assert.equal(backoffDelay(Number.NaN, options, highest), 100);
    assert.equal(backoffDelay(2.7, options, highest), 400);
    assert.equal(backoffDelay(2000, { baseMs: 0, maxMs: 1000 }, highest), 0);
  });

  it('lets maxMs win over baseMs and tolerates a misbehaving random source', () => {
    assert.equal(backoffDelay(0, { baseMs: 1000, maxMs: 300 }, highest), 300);
    assert.equal(backoffDelay(1, options, () => 1), 200);
    assert.equal(backoffDelay(1, options, () => 7), 200);
    assert.equal(backoffDelay(1, options, () => -1), 0);
    assert.equal(backoffDelay(1, options, () => Number.NaN), 0);
  });

  it('rejects negative or non-finite options', () => {
    assert.throws(() => backoffDelay(0, { baseMs: -1, maxMs: 10 }), RangeError);
    assert.throws(() => backoffDelay(0, { baseMs: 1, maxMs: Infinity }), RangeError);
    assert.throws(() => backoffDelay(0, { baseMs: Number.NaN, maxMs: 10 }), RangeError);
  });
});
