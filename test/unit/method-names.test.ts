import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalMethod, recentMethod } from '../../src/jsonrpc/method-names.js';

test('the canonical name is the same name, for every kind of name a client may send', () => {
  for (const name of ['eth_getBalance', '__proto__', 'constructor', 'toString', '123', '', 'ключ ✓', 'x'.repeat(128)]) {
    const parsed = (JSON.parse(JSON.stringify({ method: name })) as { method: string }).method;
    assert.equal(canonicalMethod(parsed), name);
    assert.equal(canonicalMethod(parsed), name, 'asked again');
  }
});

test('a recently read name is the canonical one, whatever hash the caller gives it', () => {
  const fresh = (name: string): string => (JSON.parse(JSON.stringify(name)) as string).slice(0);
  // Every name under one hash: each read replaces the slot's name, and must still come out as itself.
  for (const name of ['eth_getBalance', 'eth_getBalancf', 'eth_call', 'eth_getBalance', 'eth_call']) {
    assert.equal(recentMethod(fresh(name), 7), name);
    assert.equal(recentMethod(fresh(name), 7), canonicalMethod(name), 'the same string as canonicalMethod gives');
  }
  assert.equal(recentMethod(fresh('eth_chainId'), -1), 'eth_chainId', 'a negative hash');
});
