import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { CircuitBreaker, defaultBreakerOptions } from '../../src/upstream/circuit-breaker.js';
import type { BreakerOptions, BreakerState } from '../../src/upstream/circuit-breaker.js';

/** A breaker on a fake clock that records every state change. */
function setup(options: Partial<BreakerOptions> = {}) {
  let time = 1_000_000;
  const changes: BreakerState[] = [];
  const breaker = new CircuitBreaker(options, () => time, (state) => changes.push(state));
  return {
    breaker,
    changes,
    advance(ms: number): void {
      time += ms;
    },
    fail(times: number): void {
      for (let i = 0; i < times; i++) breaker.recordFailure();
    },
  };
}

describe('CircuitBreaker', () => {
  it('has the documented defaults', () => {
    assert.deepEqual({ ...defaultBreakerOptions }, { failureThreshold: 5, openMs: 5000, halfOpenTrials: 1 });
    const { breaker, fail, advance } = setup();
    fail(4);
    assert.equal(breaker.state, 'closed');
    fail(1);
    assert.equal(breaker.state, 'open');
    advance(4999);
    assert.equal(breaker.state, 'open');
    advance(1);
    assert.equal(breaker.state, 'half-open');
    assert.equal(breaker.tryAcquire(), true);
    assert.equal(breaker.tryAcquire(), false);
  });

  it('lets every request through while closed', () => {
    const { breaker, changes } = setup();
    for (let i = 0; i < 100; i++) assert.equal(breaker.tryAcquire(), true);
    assert.equal(breaker.state, 'closed');
    assert.deepEqual(changes, []);
  });

  it('opens after failureThreshold consecutive failures and refuses requests', () => {
    const { breaker, changes, fail } = setup({ failureThreshold: 3 });
    fail(2);
    assert.equal(breaker.tryAcquire(), true);
    fail(1);
    assert.equal(breaker.state, 'open');
    assert.equal(breaker.tryAcquire(), false);
    assert.deepEqual(changes, ['open']);
  });

  it('needs the failures to be consecutive: a success resets the count', () => {
    const { breaker, fail } = setup({ failureThreshold: 3 });
    fail(2);
    breaker.recordSuccess();
    fail(2);
    assert.equal(breaker.state, 'closed');
    fail(1);
    assert.equal(breaker.state, 'open');
  });

  it('goes half-open after openMs and closes on a successful trial', () => {
    const { breaker, changes, fail, advance } = setup({ failureThreshold: 1, openMs: 1000 });
    fail(1);
    advance(999);
    assert.equal(breaker.tryAcquire(), false);
    advance(1);
    assert.equal(breaker.tryAcquire(), true);
    assert.equal(breaker.state, 'half-open');
    breaker.recordSuccess();
    assert.equal(breaker.state, 'closed');
    assert.equal(breaker.tryAcquire(), true);
    assert.deepEqual(changes, ['open', 'half-open', 'closed']);
  });

  it('moves to half-open on tryAcquire as well as on reading state', () => {
    const { breaker, changes, fail, advance } = setup({ failureThreshold: 1, openMs: 10 });
    fail(1);
    advance(10);
    assert.equal(breaker.tryAcquire(), true);
    assert.deepEqual(changes, ['open', 'half-open']);
  });

  it('reopens for a full openMs when a trial fails', () => {
    const { breaker, changes, fail, advance } = setup({ failureThreshold: 2, openMs: 1000 });
    fail(2);
    advance(1000);
    assert.equal(breaker.tryAcquire(), true);
    breaker.recordFailure();
    assert.equal(breaker.state, 'open');
    advance(999);
    assert.equal(breaker.tryAcquire(), false);
    advance(1);
    assert.equal(breaker.state, 'half-open');
    assert.deepEqual(changes, ['open', 'half-open', 'open', 'half-open']);
  });

  it('lets exactly halfOpenTrials requests through while half-open', () => {
    const { breaker, fail, advance } = setup({ failureThreshold: 1, openMs: 100, halfOpenTrials: 3 });
    fail(1);
    advance(100);
    const granted = Array.from({ length: 5 }, () => breaker.tryAcquire());
    assert.deepEqual(granted, [true, true, true, false, false]);
  });

  it('counts failures from zero after closing again', () => {
    const { breaker, fail, advance } = setup({ failureThreshold: 3, openMs: 100 });
    fail(3);
    advance(100);
    assert.equal(breaker.tryAcquire(), true);
    breaker.recordSuccess();
    fail(2);
    assert.equal(breaker.state, 'closed');
    fail(1);
    assert.equal(breaker.state, 'open');
  });

  it('ignores results recorded while open (calls sent before it opened)', () => {
    const { breaker, changes, fail, advance } = setup({ failureThreshold: 2, openMs: 1000 });
    fail(2);
    advance(500);
    breaker.recordSuccess();
    assert.equal(breaker.state, 'open');
    breaker.recordFailure();
    advance(500);
    // The late failure did not restart the open period.
    assert.equal(breaker.state, 'half-open');
    assert.deepEqual(changes, ['open', 'half-open']);
  });

  it('offers a new round of trials when the last round went unanswered for openMs', () => {
    const { breaker, fail, advance } = setup({ failureThreshold: 1, openMs: 1000, halfOpenTrials: 1 });
    fail(1);
    advance(1000);
    assert.equal(breaker.tryAcquire(), true);
    advance(999);
    assert.equal(breaker.tryAcquire(), false);
    advance(1);
    assert.equal(breaker.tryAcquire(), true);
    assert.equal(breaker.tryAcquire(), false);
  });

  it('works with openMs 0: half-open right after opening', () => {
    const { breaker, fail } = setup({ failureThreshold: 1, openMs: 0 });
    fail(1);
    assert.equal(breaker.state, 'half-open');
    assert.equal(breaker.tryAcquire(), true);
  });

  it('uses Date.now when no clock is given', () => {
    const breaker = new CircuitBreaker({ failureThreshold: 1, openMs: 60_000 });
    breaker.recordFailure();
    assert.equal(breaker.state, 'open');
    assert.equal(breaker.tryAcquire(), false);
  });

  it('rejects invalid options', () => {
    assert.throws(() => new CircuitBreaker({ failureThreshold: 0 }), /failureThreshold/);
    assert.throws(() => new CircuitBreaker({ failureThreshold: 1.5 }), /failureThreshold/);
    assert.throws(() => new CircuitBreaker({ openMs: -1 }), /openMs/);
    assert.throws(() => new CircuitBreaker({ openMs: Number.NaN }), /openMs/);
    assert.throws(() => new CircuitBreaker({ halfOpenTrials: 0 }), /halfOpenTrials/);
  });
});
