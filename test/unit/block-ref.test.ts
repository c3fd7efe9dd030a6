import assert from 'node:assert/strict';
import { test } from 'node:test';
import { blockNumber, blockTag } from '../../src/jsonrpc/block-ref.js';

test('block numbers are hex after 0x or 0X, at most 64 bits; anything else is not one', () => {
  assert.equal(blockNumber('0x1b4'), 436n);
  assert.equal(blockNumber('0X1B4'), 436n);
  assert.equal(blockNumber('0x0'), 0n);
  assert.equal(blockNumber('0xffffffffffffffff'), 2n ** 64n - 1n);
  for (const value of ['0x', 'latest', 'x1', '1b4', '0x1g', ' 0x1', `0x1${'0'.repeat(16)}`, 436, null, undefined]) {
    assert.equal(blockNumber(value), undefined, JSON.stringify(value));
  }
});

test('block tags are read in any case, as their lower-case name', () => {
  assert.equal(blockTag('latest'), 'latest');
  assert.equal(blockTag('Pending'), 'pending');
  assert.equal(blockTag('EARLIEST'), 'earliest');
  assert.equal(blockTag('Finalized'), 'finalized');
  assert.equal(blockTag('safe'), 'safe');
  for (const value of ['newest', 'pending ', 'latestt', '0x1', '', 7, null]) assert.equal(blockTag(value), undefined, JSON.stringify(value));
});
