import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HeldCalls } from '../../src/jsonrpc/held-calls.js';

test('held calls start in order as slots free, at most maxInFlight at once, and no more than maxHeld wait', () => {
  const holder = { inFlight: 2, closed: false };
  const held = new HeldCalls(holder, 2, 3);
  const started: number[] = [];
  for (const n of [1, 2, 3]) assert.ok(held.hold(() => (started.push(n), holder.inFlight++)));
  assert.equal(held.hold(() => started.push(4)), false, 'a fourth does not wait');
  held.release();
  assert.deepEqual(started, [], 'no slot free');
  holder.inFlight = 1;
  held.release();
  assert.deepEqual(started, [1]);
  holder.inFlight = 0;
  held.release();
  assert.deepEqual(started, [1, 2, 3]);
  assert.equal(held.size, 0);
});

test('a held call that settles as it starts (refused, answered at once) lets the next one start', () => {
  const holder = { inFlight: 1, closed: false };
  const held = new HeldCalls(holder, 1, 10);
  const started: number[] = [];
  // Each starts and settles at once: the settle releases again from inside the loop.
  for (const n of [1, 2, 3]) held.hold(() => (started.push(n), held.release()));
  holder.inFlight = 0;
  held.release();
  assert.deepEqual(started, [1, 2, 3]);
});

test('a client that left: its held calls are started at once, whatever the slots, to be settled', () => {
  const holder = { inFlight: 1, closed: false };
  const held = new HeldCalls(holder, 1, 10);
  const started: number[] = [];
  for (const n of [1, 2]) held.hold(() => started.push(n));
  holder.closed = true;
  held.release();
  assert.deepEqual(started, [1, 2]);
  assert.equal(held.size, 0);
});

test('a connection that always has calls waiting keeps a bounded list: spent slots are let go', () => {
  const maxHeld = 300;
  const holder = { inFlight: 128, closed: false };
  const held = new HeldCalls(holder, 128, maxHeld);
  let started = 0;
  const start = (): void => {
    started++;
    holder.inFlight++;
  };
  for (let i = 0; i < 200; i++) held.hold(start);
  // A million calls: each settling call frees a slot that the oldest waiting one takes, and a new one waits.
  for (let i = 0; i < 1_000_000; i++) {
    holder.inFlight--;
    held.release();
    assert.ok(held.hold(start));
  }
  assert.equal(started, 1_000_000, 'every freed slot taken, in turn');
  assert.equal(held.size, 200, 'as many waiting as ever');
  assert.ok(held.slots <= 2 * maxHeld, `slots kept: ${held.slots}`);
});
