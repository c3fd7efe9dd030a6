import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NodeRpcError, isLogsRangeRefused } from '../../src/upstream/errors.js';

test("a node refusing an eth_getLogs range as too much at once is told by its words, in each client's", () => {
  const refusal = (message: string): NodeRpcError => new NodeRpcError(`node0: eth_getLogs failed: ${message}`, -32602, message);
  for (const message of [
    'query exceeds max results 20000, retry with the range 100-112',
    'query returned more than 10000 results',
    'Requested range exceeds maximum range limit',
    'Too many logs requested. Max logs per response is 10000.',
    'block range too large',
    'exceed maximum block range: 5000',
    'eth_getLogs and eth_newFilter are limited to a 10,000 blocks range',
    'eth_getLogs is limited to a 5 block range',
    'You can make eth_getLogs requests with up to a 500 block range. Based on your parameters, this block range should work: [0x1be4213, 0x1be4406]',
    'Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no limit on the response size.',
  ]) {
    assert.equal(isLogsRangeRefused(refusal(message)), true, message);
  }
  const other = [
    'header not found',
    'internal error',
    'invalid argument 0: hex string without 0x prefix',
    // Rate limits: the same range is answered later.
    'project ID request rate exceeded',
    'rate limit exceeded',
    'Your app has exceeded its compute units per second capacity.',
    'daily request quota exceeded',
  ];
  for (const message of other) assert.equal(isLogsRangeRefused(refusal(message)), false, message);
  assert.equal(isLogsRangeRefused(new Error('query exceeds max results 20000')), false, 'only a node answer');
});
