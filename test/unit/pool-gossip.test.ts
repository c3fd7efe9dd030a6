import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Hex } from 'viem';
import { gossipOrder, minedAsRecorded, type GossipedTransaction } from '../../src/devnet/pool-gossip.js';

function tx(from: string, nonce: number): GossipedTransaction {
  return { hash: `0x${from}${nonce}`, from: `0x${from}`, nonce, raw: `0x${from}${nonce}ff` };
}

test('gossiped transactions go in one order whichever node held which: by sender, then nonce, each once', () => {
  const fromNode0 = [tx('bb', 2), tx('aa', 10)];
  const fromNode1 = [tx('bb', 1), tx('aa', 9), tx('bb', 2)];
  const expected = [tx('aa', 9), tx('aa', 10), tx('bb', 1), tx('bb', 2)];
  assert.deepEqual(gossipOrder([...fromNode0, ...fromNode1]), expected);
  assert.deepEqual(gossipOrder([...fromNode1, ...fromNode0]), expected);
});

test("a mined block is the record's when it holds only the record's transactions, in its order", () => {
  const recorded: Hex[] = ['0x01', '0x02', '0x03'];
  assert.equal(minedAsRecorded(['0x01', '0x02', '0x03'], recorded), true);
  assert.equal(minedAsRecorded(['0x01', '0x03'], recorded), true, 'one every node rejected');
  assert.equal(minedAsRecorded([], recorded), true);
  assert.equal(minedAsRecorded(['0x09', '0x01', '0x02', '0x03'], recorded), false, "a send the record does not have");
  assert.equal(minedAsRecorded(['0x02', '0x01', '0x03'], recorded), false, 'another order');
  assert.equal(minedAsRecorded(['0x01', '0x01'], recorded), false);
});
