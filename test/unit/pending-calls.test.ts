import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { PendingCalls } from '../../src/upstream/pending-calls.js';

type Call = { id: number; deadline: number; label: string };
const call = (id: number, deadline = 1000): Call => ({ id, deadline, label: `call ${id}` });

describe('PendingCalls', () => {
  it('takes each call once, by id, and counts what is pending', () => {
    const pending = new PendingCalls<Call>(4);
    for (const id of [1, 2, 3]) pending.add(call(id));
    assert.equal(pending.size, 3);
    assert.equal(pending.take(2)?.label, 'call 2');
    assert.equal(pending.take(2), undefined, 'a reply for a call already taken (timed out) finds nothing');
    assert.equal(pending.size, 2);
    assert.equal(pending.take(7), undefined, 'an id never sent finds nothing');
  });

  it('does not hand out a newer call for an older id that shares its slot', () => {
    const pending = new PendingCalls<Call>(4);
    pending.add(call(5));
    assert.equal(pending.take(1), undefined);
    assert.equal(pending.take(9), undefined);
    assert.equal(pending.take(5)?.id, 5);
  });

  it('grows when an old call still holds the slot a new id needs, keeping every call', () => {
    const pending = new PendingCalls<Call>(4);
    pending.add(call(0)); // a call that hangs while many later ones complete
    for (let id = 1; id <= 1000; id++) {
      pending.add(call(id));
      assert.equal(pending.take(id)?.id, id);
    }
    pending.add(call(1024)); // differs from 0 by a multiple of every capacity up to 1024
    assert.equal(pending.size, 2);
    assert.equal(pending.take(0)?.id, 0);
    assert.equal(pending.take(1024)?.id, 1024);
  });

  it('takeAll empties the table and returns the calls oldest first', () => {
    const pending = new PendingCalls<Call>(4);
    for (const id of [6, 3, 4, 9]) pending.add(call(id));
    assert.deepEqual(
      pending.takeAll().map((c) => c.id),
      [3, 4, 6, 9],
    );
    assert.equal(pending.size, 0);
    assert.equal(pending.take(3), undefined);
  });

  it('takes the expired calls, oldest first, and knows the earliest deadline left', () => {
    const pending = new PendingCalls<Call>(4);
    pending.add(call(1, 300));
    pending.add(call(2, 100));
    pending.add(call(3, 200));
    pending.add(call(4, 500));
    assert.equal(pending.earliestDeadline(), 100);
    assert.deepEqual(
      pending.takeExpired(200).map((c) => c.id),
      [2, 3],
      'deadline at or before now',
    );
    assert.equal(pending.size, 2);
    assert.equal(pending.earliestDeadline(), 300);
    assert.deepEqual(pending.takeExpired(299), []);
    pending.takeAll();
    assert.equal(pending.earliestDeadline(), Infinity);
  });

  it('counts the request bytes of the calls pending, however they leave', () => {
    const pending = new PendingCalls<Call & { bytes: number }>(4);
    for (const id of [1, 2, 3, 4]) pending.add({ ...call(id, id * 100), bytes: id * 1000 });
    assert.equal(pending.bytes, 10_000);
    pending.take(4);
    assert.equal(pending.bytes, 6_000, 'answered');
    pending.takeExpired(100);
    assert.equal(pending.bytes, 5_000, 'timed out');
    pending.add({ ...call(5), bytes: 500 });
    assert.equal(pending.bytes, 5_500, 'counted across a growth of the table');
    pending.takeAll();
    assert.equal(pending.bytes, 0, 'socket closed');
  });

  it('stops counting the bytes of calls the node has read, each once, before their answers', () => {
    const pending = new PendingCalls<Call & { bytes: number }>(4);
    for (const id of [1, 2, 3, 4, 5]) pending.add({ ...call(id), bytes: 100 });
    pending.delivered(3);
    assert.equal(pending.bytes, 200, 'calls 1-3 read by the node (it answered 3, or ponged a ping sent after it)');
    assert.equal(pending.size, 5, 'still waiting for their answers');
    pending.take(2);
    pending.takeExpired(Infinity);
    assert.equal(pending.bytes, 0, 'read calls leaving are not taken off twice');
    pending.add({ ...call(6), bytes: 100 });
    pending.delivered(2);
    assert.equal(pending.bytes, 100, 'a delivery older than the last changes nothing');
    pending.delivered(6);
    assert.equal(pending.bytes, 0);
  });

  it('names the largest request the node may not have read yet, a call that timed out included, for a 1009', () => {
    type Sized = Call & { bytes: number };
    const sized = (id: number, bytes: number, deadline = 1000): Sized => ({ ...call(id, deadline), bytes });
    const pending = new PendingCalls<Sized>(8);
    pending.add(sized(1, 500_000));
    pending.add(sized(2, 1_500_000, 10));
    pending.add(sized(3, 100_000));
    pending.delivered(1);
    assert.deepEqual(pending.largestUnread(), sized(2, 1_500_000, 10), 'call 1, read, cannot be the one refused');
    assert.ok(pending.get(2) !== undefined, 'still pending');
    pending.takeExpired(20);
    assert.deepEqual(pending.largestUnread(), sized(2, 1_500_000, 10), 'timed out before the node read it: still the culprit, not call 3');
    assert.equal(pending.get(2), undefined, 'no longer pending');
    pending.delivered(2);
    assert.deepEqual(pending.largestUnread(), sized(3, 100_000), 'once the node has read past it, it is not');
    assert.ok(pending.get(3) !== undefined, 'still pending');
    pending.add(sized(4, 900_000, 30));
    pending.takeExpired(40);
    pending.takeAll();
    assert.equal(pending.largestUnread(), undefined, 'a new socket starts with nothing unread');
  });

  it('refuses a capacity that is not a power of two', () => {
    assert.throws(() => new PendingCalls(100), /power of two, got 100/);
  });
});
