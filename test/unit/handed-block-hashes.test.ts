import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HandedBlockHashes } from '../../src/router/handed-block-hashes.js';
import { ParamsJson } from '../../src/upstream/request-frame.js';
import type { Upstream } from '../../src/upstream/upstream.js';

const node0 = { name: 'node0' } as Upstream;
const node1 = { name: 'node1' } as Upstream;
const hash = (n: number): string => `0x${n.toString(16).padStart(64, '0')}`;
const DEAD = '0x000000000000000000000000000000000000dEaD';

test('a read of a block by a hash a block filter handed over names the node that handed it over, however the read names it', () => {
  const handed = new HandedBlockHashes();
  handed.note(node0, [hash(0xab)]);
  const upper = hash(0xab).toUpperCase().replace('0X', '0x');
  assert.equal(handed.nodeFor('eth_getBlockByHash', [upper, false]), node0);
  assert.equal(handed.nodeFor('eth_getBlockTransactionCountByHash', [hash(0xab)]), node0);
  assert.equal(handed.nodeFor('eth_getTransactionByBlockHashAndIndex', [hash(0xab), '0x0']), node0);
  assert.equal(handed.nodeFor('eth_getBlockReceipts', [hash(0xab)]), node0);
  assert.equal(handed.nodeFor('eth_getBlockReceipts', [{ blockHash: hash(0xab) }]), node0);
  assert.equal(handed.nodeFor('eth_getBalance', [DEAD, { blockHash: hash(0xab), requireCanonical: true }]), node0);
  assert.equal(handed.nodeFor('eth_call', [{ to: DEAD }, { blockHash: hash(0xab) }]), node0);
  assert.equal(handed.nodeFor('eth_getLogs', [{ blockHash: hash(0xab) }]), node0);
  // As the client wrote them (the router's params once the dispatcher has their text).
  assert.equal(handed.nodeFor('eth_getBlockByHash', new ParamsJson(JSON.stringify([hash(0xab), false]), true)), node0);
  // Handed over again by another node: that one.
  handed.note(node1, [hash(0xab)]);
  assert.equal(handed.nodeFor('eth_getBlockByHash', [hash(0xab), false]), node1);
});

test('reads of other hashes, of blocks by number, or of transactions name no node, and their params are not parsed', () => {
  const handed = new HandedBlockHashes();
  handed.note(node0, [hash(1), 'not a hash', null]);
  assert.equal(handed.nodeFor('eth_getBlockByHash', [hash(2), false]), undefined);
  assert.equal(handed.nodeFor('eth_getBlockByNumber', ['0x1', false]), undefined);
  assert.equal(handed.nodeFor('eth_getBalance', [DEAD, 'latest']), undefined);
  // A transaction hash is not a block's, even when it is the same bytes.
  assert.equal(handed.nodeFor('eth_getTransactionReceipt', [hash(1)]), undefined);
  assert.equal(handed.nodeFor('eth_getTransactionByHash', new ParamsJson('not json', true)), undefined);
  // With nothing handed over, nothing is parsed.
  assert.equal(new HandedBlockHashes().nodeFor('eth_getBlockByHash', new ParamsJson('not json', true)), undefined);
});

test('only the last hashes handed over are kept, the oldest forgotten first', () => {
  const handed = new HandedBlockHashes(3);
  handed.note(node0, [hash(1), hash(2), hash(3)]);
  handed.note(node0, [hash(1)]); // handed over again: the newest now
  handed.note(node1, [hash(4)]);
  assert.equal(handed.nodeFor('eth_getBlockByHash', [hash(2), false]), undefined);
  assert.deepEqual(
    [1, 3, 4].map((n) => handed.nodeFor('eth_getBlockByHash', [hash(n), false])?.name),
    ['node0', 'node0', 'node1'],
  );
});
