import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LimitExceededError, toErrorObject } from '../../src/jsonrpc/errors.js';

test('an RpcError keeps its code and message; a bug is an internal error that shows nothing of itself', () => {
  assert.deepEqual(toErrorObject(new LimitExceededError('too many')), { code: -32005, message: 'too many' });
  assert.deepEqual(toErrorObject(new TypeError('x is undefined')), { code: -32603, message: 'internal error' });
});

test('params nested so deep that serializing them overflows the stack are the caller\'s fault', () => {
  const deep: unknown = JSON.parse(`${'['.repeat(200_000)}${']'.repeat(200_000)}`);
  let thrown: unknown;
  try {
    JSON.stringify(deep);
  } catch (error) {
    thrown = error;
  }
  assert.deepEqual(toErrorObject(thrown), { code: -32602, message: 'invalid params: nested too deeply' });
});
