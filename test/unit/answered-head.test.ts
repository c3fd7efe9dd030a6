import assert from 'node:assert/strict';
import { test } from 'node:test';
import { feeHistoryNewest, highestLogBlock } from '../../src/router/answered-head.js';
import { parseUpstreamFrame } from '../../src/upstream/reply.js';

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

test("an eth_feeHistory answer tells its newest block: its oldestBlock and one per gasUsedRatio entry", () => {
  const reply = (result: string) => parseUpstreamFrame(Buffer.from(`{"jsonrpc":"2.0","id":1,"result":${result}}`)).reply!;
  assert.equal(feeHistoryNewest(reply('{"oldestBlock":"0x10","baseFeePerGas":["0x1","0x1","0x1"],"gasUsedRatio":[0.5,0.1]}')), 0x11);
  assert.equal(feeHistoryNewest(reply('{"oldestBlock":"0x10","baseFeePerGas":["0x1"],"gasUsedRatio":[]}')), undefined);
  assert.equal(feeHistoryNewest(reply('null')), undefined);
});
