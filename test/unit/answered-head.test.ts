import assert from 'node:assert/strict';
import { test } from 'node:test';
import { highestLogBlock } from '../../src/router/answered-head.js';

test("a logs filter's answer tells the highest block of its logs, wherever it is in the list", () => {
  const log = (blockNumber: string, removed = false) => ({ blockNumber, blockHash: `0x${'ab'.repeat(32)}`, removed });
  assert.equal(highestLogBlock([log('0x9'), log('0x0b'), log('0xA')]), 11);
  assert.equal(highestLogBlock([log('0x1f')]), 31);
});

test("a removed log's block is no head: a reorg to a shorter branch took it away", () => {
  const log = (blockNumber: string, removed: boolean) => ({ blockNumber, removed });
  assert.equal(highestLogBlock([log('0x7', false), log('0x9', true)]), 7);
  assert.equal(highestLogBlock([log('0x9', true)]), undefined);
});

test('an answer without logs, or with entries that are not logs, tells nothing', () => {
  assert.equal(highestLogBlock([]), undefined);
  assert.equal(highestLogBlock([null, '0x5', { blockNumber: 5 }, { blockNumber: 'latest' }]), undefined);
});
