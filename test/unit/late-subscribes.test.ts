import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LATE_ANSWER_MS, LateSubscribes } from '../../src/upstream/late-subscribes.js';

test('a late answer is a timed-out subscribe\'s once, within the window, and not after the socket closed', () => {
  const late = new LateSubscribes();
  late.timedOut(7, 1_000);
  assert.equal(late.take(8, 1_100), false, 'another call');
  assert.equal(late.take(7, 1_100), true);
  assert.equal(late.take(7, 1_200), false, 'once');
  late.timedOut(9, 1_000);
  assert.equal(late.take(9, 1_000 + LATE_ANSWER_MS), false, 'past the window');
  late.timedOut(10, 2_000);
  late.clear();
  assert.equal(late.take(10, 2_100), false, 'the socket closed: its subscriptions went with it');
});

test('timed-out subscribes past the window or past the bound are forgotten as new ones come', () => {
  const late = new LateSubscribes();
  for (let id = 0; id < 1_500; id++) late.timedOut(id, 0);
  assert.equal(late.take(0, 1), false, 'the oldest forgotten past 1,000');
  assert.equal(late.take(1_499, 1), true);
  late.timedOut(2_000, LATE_ANSWER_MS + 1);
  assert.equal(late.take(1_498, LATE_ANSWER_MS + 2), false, 'expired ones go when a new one comes');
});
