import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Logger } from '../../src/log.js';
import { MoveLog } from '../../src/subs/move-log.js';

test('the moves of one turn are one line per kind and pair of nodes, written after the turn', async () => {
  const lines: Array<{ fields: unknown; msg: string }> = [];
  const logger = { info: (fields: unknown, msg: string) => lines.push({ fields: { ...(fields as object) }, msg }) } as unknown as Logger;
  const log = new MoveLog(logger);
  for (let i = 0; i < 1000; i++) log.note('logs', 'a', 'b', 2);
  log.note('newHeads', 'a', 'b', 5);
  log.note('logs', 'a', 'c', 1);
  assert.deepEqual(lines, [], 'nothing within the turn');
  await nextTurn();
  assert.deepEqual(lines, [
    { fields: { kind: 'logs', from: 'a', to: 'b', groups: 1000, clients: 2000 }, msg: 'subscriptions moved' },
    { fields: { kind: 'newHeads', from: 'a', to: 'b', groups: 1, clients: 5 }, msg: 'subscriptions moved' },
    { fields: { kind: 'logs', from: 'a', to: 'c', groups: 1, clients: 1 }, msg: 'subscriptions moved' },
  ]);
  log.note('logs', 'b', 'a', 3);
  await nextTurn();
  assert.equal(lines.length, 4, 'a later turn writes its own line');
});
