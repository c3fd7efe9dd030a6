import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isAlreadyKnown, isFilterGone, isIdempotent, isRetryableRpcError } from '../../src/router/retry-policy.js';

test('node-side failures are retried on another node', () => {
  for (const error of [
    { code: -32005, message: 'rate limit exceeded' },
    { code: 429, message: 'Too Many Requests' },
    { code: -32603, message: 'internal error' },
    { code: -32000, message: 'header not found' },
    { code: -32000, message: 'request timed out' },
    { code: -32001, message: 'missing trie node abc' },
  ]) {
    assert.equal(isRetryableRpcError(error), true, error.message);
  }
});

test("the caller's own mistakes are returned as they are", () => {
  for (const error of [
    { code: 3, message: 'execution reverted: nope', data: '0x08c379a0' },
    { code: -32000, message: 'execution reverted' },
    { code: -32602, message: 'invalid argument 0: hex string without 0x prefix' },
    { code: -32601, message: 'the method foo does not exist' },
    { code: -32000, message: 'insufficient funds for gas * price + value' },
    { code: -32000, message: 'nonce too low' },
    { code: -32003, message: 'transaction underpriced' },
  ]) {
    assert.equal(isRetryableRpcError(error), false, error.message);
  }
});

test('writes and filter methods are not idempotent; reads are', () => {
  assert.equal(isIdempotent('eth_call'), true);
  assert.equal(isIdempotent('eth_getLogs'), true);
  assert.equal(isIdempotent('eth_sendRawTransaction'), false);
  assert.equal(isIdempotent('eth_getFilterChanges'), false);
  assert.equal(isIdempotent('eth_newFilter'), false);
});

test('"already known" variants from different clients are recognised', () => {
  for (const message of ['already known', 'known transaction: 0xabc', 'Transaction with the same hash was already imported.', 'ALREADY_EXISTS: already known']) {
    assert.equal(isAlreadyKnown({ code: -32000, message }), true, message);
  }
  assert.equal(isAlreadyKnown({ code: -32000, message: 'nonce too low' }), false);
});

test('"no such filter" from different nodes is recognised, and nothing else is', () => {
  for (const message of ['filter not found', 'Filter not found', 'Filter id 22 does not exist.', "Filter with id: '5' does not exist."]) {
    assert.ok(isFilterGone({ code: -32000, message }), message);
  }
  for (const message of ['header not found', 'execution reverted', 'block 0x5 does not exist']) {
    assert.equal(isFilterGone({ code: -32000, message }), false, message);
  }
});
