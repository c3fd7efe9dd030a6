import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EarlyNotifications } from '../../src/subs/early-notifications.js';

test('notifications for an id not routed yet are handed over in order when it is, and dropped at the next turn', async () => {
  const early = new EarlyNotifications();
  early.hold('0xa', 1);
  early.hold('0xb', 'other');
  early.hold('0xa', 2);
  assert.deepEqual(early.take('0xa'), [1, 2]);
  assert.deepEqual(early.take('0xa'), [], 'taken once');
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(early.take('0xb'), [], 'gone with the turn');
  for (let i = 0; i < 100; i++) early.hold('0xc', i);
  assert.equal(early.take('0xc').length, 64, 'at most 64 held in a turn');
});
