import assert from 'node:assert/strict';
import { test } from 'node:test';
import { blockMissingMayBeLag, namesPendingBlock, nullMayBeLag, nullMeansBlockMissing, requiredBlock } from '../../src/router/block-requirement.js';

test('reads that name a block number require a node that has it', () => {
  assert.equal(requiredBlock('eth_getBlockByNumber', ['0x10', false]), 16n);
  assert.equal(requiredBlock('eth_getBalance', ['0xabc0000000000000000000000000000000000000', '0x5']), 5n);
  assert.equal(requiredBlock('eth_call', [{ to: '0x00' }, { blockNumber: '0x7' }]), 7n);
  assert.equal(requiredBlock('eth_getStorageAt', ['0x00', '0x0', '0x9']), 9n);
  assert.equal(requiredBlock('eth_getLogs', [{ fromBlock: '0x1', toBlock: '0x3' }]), 3n);
  // Up to "latest": no number to require; the router prefers the nodes at the highest head.
  assert.equal(requiredBlock('eth_getLogs', [{ fromBlock: '0x4' }]), undefined);
  assert.equal(requiredBlock('eth_getLogs', [{ fromBlock: '0x4', toBlock: 'latest' }]), undefined);
});

test('tags, hashes and other methods require nothing', () => {
  assert.equal(requiredBlock('eth_getBlockByNumber', ['latest', false]), undefined);
  assert.equal(requiredBlock('eth_getBalance', ['0x00']), undefined);
  assert.equal(requiredBlock('eth_call', [{ to: '0x00' }, { blockHash: '0x' + 'a'.repeat(64) }]), undefined);
  assert.equal(requiredBlock('eth_chainId', []), undefined);
  assert.equal(requiredBlock('eth_getLogs', [{ blockHash: '0x' + 'a'.repeat(64) }]), undefined);
  assert.equal(requiredBlock('eth_getBlockByNumber', { 0: '0x1' }), undefined);
});

test("reads of the 'pending' block are told by their block parameter", () => {
  assert.equal(namesPendingBlock('eth_getBalance', ['0x00', 'pending']), true);
  assert.equal(namesPendingBlock('eth_call', [{ to: '0x00' }, 'pending']), true);
  assert.equal(namesPendingBlock('eth_getBlockByNumber', ['pending', false]), true);
  assert.equal(namesPendingBlock('eth_getStorageAt', ['0x00', '0x0', 'pending']), true);
  assert.equal(namesPendingBlock('eth_getBalance', ['0x00', 'latest']), false);
  assert.equal(namesPendingBlock('eth_getBalance', ['0x00']), false);
  // 'pending' in another position is not the block parameter.
  assert.equal(namesPendingBlock('eth_getStorageAt', ['0x00', 'pending', 'latest']), false);
  assert.equal(namesPendingBlock('eth_sendRawTransaction', ['pending']), false);
});

test("the 'pending' tag is read in any case, as alloy-based nodes (anvil, reth) read it", () => {
  assert.equal(namesPendingBlock('eth_getBalance', ['0x00', 'Pending']), true);
  assert.equal(namesPendingBlock('eth_getBlockByNumber', ['PENDING', false]), true);
  assert.equal(namesPendingBlock('eth_getBalance', ['0x00', 'pending ']), false);
  assert.equal(namesPendingBlock('eth_getBalance', ['0x00', 'Latest']), false);
});

test('null answers to lookups may be lag; other nulls are final', () => {
  assert.equal(nullMayBeLag('eth_getTransactionReceipt'), true);
  assert.equal(nullMayBeLag('eth_getBlockByHash'), true);
  assert.equal(nullMayBeLag('eth_call'), false);
});

test('only block reads by number treat a null at a reported height as a block not there yet', () => {
  assert.equal(nullMeansBlockMissing('eth_getBlockByNumber'), true);
  assert.equal(nullMeansBlockMissing('eth_getBlockReceipts'), true);
  // An index past the block's transactions is a real null.
  assert.equal(nullMeansBlockMissing('eth_getTransactionByBlockNumberAndIndex'), false);
  assert.equal(nullMeansBlockMissing('eth_getTransactionReceipt'), false);
});

test("a node's word that it lacks the block a read names is told apart from the caller's mistakes", () => {
  for (const message of [
    'header not found',
    'header for hash not found',
    'unknown block',
    'block not found',
    'Block 0xabc could not be found',
    'Resource not found',
    'BlockOutOfRangeError: block height is 9 but requested was 10',
  ]) {
    assert.equal(blockMissingMayBeLag('eth_getBalance', { message }), true, message);
    assert.equal(blockMissingMayBeLag('eth_getBlockTransactionCountByHash', { message }), true, message);
  }
  // anvil's refusal of a logs filter from a block past its head.
  assert.equal(blockMissingMayBeLag('eth_newFilter', { message: 'BlockOutOfRangeError: block height is 4 but requested was 5' }), true);
  // Not a read of one block, or not about the block.
  assert.equal(blockMissingMayBeLag('eth_sendRawTransaction', { message: 'header not found' }), false);
  assert.equal(blockMissingMayBeLag('web3_clientVersion', { message: 'Resource not found' }), false);
  for (const message of ['execution reverted', 'invalid argument 1: hex string without 0x prefix', 'nonce too low']) {
    assert.equal(blockMissingMayBeLag('eth_call', { message }), false, message);
  }
});
