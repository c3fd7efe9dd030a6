import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalMethod } from '../../src/jsonrpc/method-names.js';

test('the canonical name is the same name, for every kind of name a client may send', () => {
  for (const name of ['eth_getBalance', '__proto__', 'constructor', 'toString', '123', '', 'ключ ✓', 'x'.repeat(128)]) {
    const parsed = (JSON.parse(JSON.stringify({ method: name })) as { method: string }).method;
    assert.equal(canonicalMethod(parsed), name);
    assert.equal(canonicalMethod(parsed), name, 'asked again');
  }
});
