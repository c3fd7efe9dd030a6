import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isAlreadyKnown, isFilterGone, isNonceTaken, isRetryableRpcError, isSignedSend, isSyncWaitOver, isWrite, mayHaveReachedNode } from '../../src/router/retry-policy.js';
import { UpstreamFailure, type UpstreamFailureCode } from '../../src/upstream/errors.js';

test('node-side failures are retried on another node', () => {
  for (const error of [
    { code: -32005, message: 'rate limit exceeded' },
    { code: 429, message: 'Too Many Requests' },
    { code: -32603, message: 'internal error' },
    { code: -32000, message: 'header not found' },
    { code: -32000, message: 'request timed out' },
    { code: -32001, message: 'missing trie node abc' },
    // Pruned state in other clients' words: an archive node beside them has it.
    { code: -32002, message: 'No state available for block 0xabc (16)' },
    { code: -32000, message: 'historical state not available in path scheme yet' },
    { code: -32000, message: 'state at block #16 is pruned' },
    { code: -32000, message: 'history: data before txNum=4200 is not available' },
    // A method this node's version lacks; another node may have it.
    { code: -32601, message: 'the method eth_getBlockReceipts does not exist/is not available' },
  ]) {
    assert.equal(isRetryableRpcError(error), true, error.message);
  }
});

test("the caller's own mistakes are returned as they are", () => {
  for (const error of [
    { code: 3, message: 'execution reverted: nope', data: '0x08c379a0' },
    { code: -32000, message: 'execution reverted' },
    { code: -32602, message: 'invalid argument 0: hex string without 0x prefix' },
    { code: -32000, message: 'insufficient funds for gas * price + value' },
    { code: -32000, message: 'nonce too low' },
    { code: -32003, message: 'transaction underpriced' },
  ]) {
    assert.equal(isRetryableRpcError(error), false, error.message);
  }
});

test('signed transactions may go to each node once; other writes are told apart from reads', () => {
  for (const method of ['eth_sendRawTransaction', 'eth_sendRawTransactionConditional', 'eth_sendRawTransactionSync']) {
    assert.equal(isSignedSend(method), true, method);
    assert.equal(isWrite(method), false, method);
  }
  for (const method of ['eth_sendTransaction', 'eth_sendBundle', 'eth_sendPrivateTransaction', 'eth_cancelBundle', 'eth_sendUserOperation', 'eth_submitWork', 'eth_submitHashrate', 'personal_sendTransaction']) {
    assert.equal(isWrite(method), true, method);
    assert.equal(isSignedSend(method), false, method);
  }
  for (const method of ['eth_call', 'eth_getLogs', 'eth_signTransaction', 'eth_estimateGas', 'eth_getTransactionByHash', 'net_version', 'eth_subscribe']) {
    assert.equal(isWrite(method), false, method);
    assert.equal(isSignedSend(method), false, method);
  }
});

test('a call that never left evmux cannot have reached a node; one that timed out or met a closing socket may have', () => {
  const failure = (code: UpstreamFailureCode): UpstreamFailure => new UpstreamFailure(code, 'node0: x', 'node0');
  for (const code of ['EVMUX_NOT_CONNECTED', 'EVMUX_QUEUE_FULL', 'EVMUX_QUEUE_TIMEOUT', 'EVMUX_CIRCUIT_OPEN'] as const) {
    assert.equal(mayHaveReachedNode(failure(code)), false, code);
  }
  for (const code of ['EVMUX_TIMEOUT', 'EVMUX_SOCKET_CLOSED', 'EVMUX_ANSWER_TOO_LARGE'] as const) {
    assert.equal(mayHaveReachedNode(failure(code)), true, code);
  }
});

test('a taken nonce in the words of different nodes is recognised, and nothing else is', () => {
  for (const message of [
    'nonce too low',
    'nonce too low: next nonce 5, tx nonce 4',
    'Nonce too low',
    'Transaction nonce is too low',
    'NONCE_TOO_LOW',
    'OldNonce',
    'replacement transaction underpriced',
    'REPLACEMENT_UNDERPRICED',
  ]) {
    assert.equal(isNonceTaken({ code: -32000, message }), true, message);
  }
  for (const message of ['nonce too high', 'insufficient funds for gas * price + value', 'transaction underpriced', 'already known']) {
    assert.equal(isNonceTaken({ code: -32000, message }), false, message);
  }
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

test("eth_sendRawTransactionSync's wait ran out: the node took the transaction (EIP-7966 codes 4 and 5, anvil's wording)", () => {
  assert.equal(isSyncWaitOver({ code: 4, message: 'The transaction was added to the mempool but wasn\'t processed in 2s.' }), true);
  assert.equal(isSyncWaitOver({ code: 5, message: 'The transaction was added to the mempool but wasn\'t processed due to a missing nonce or insufficient funds.' }), true);
  assert.equal(isSyncWaitOver({ code: -32603, message: 'Transaction confirmation timeout' }), true);
  assert.equal(isSyncWaitOver({ code: -32000, message: 'transaction was added to the transaction pool but wasn\'t processed in 2s' }), true);
  assert.equal(isSyncWaitOver({ code: -32603, message: 'internal error' }), false);
  assert.equal(isSyncWaitOver({ code: -32000, message: 'request timeout' }), false);
});
