import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalMethod, recentMethod, rememberMethod } from '../../src/jsonrpc/method-names.js';

test('the canonical name is the same name, for every kind of name a client may send', () => {
  for (const name of ['eth_getBalance', '__proto__', 'constructor', 'toString', '123', '', 'ключ ✓', 'x'.repeat(128)]) {
    const parsed = (JSON.parse(JSON.stringify({ method: name })) as { method: string }).method;
    assert.equal(canonicalMethod(parsed), name);
    assert.equal(canonicalMethod(parsed), name, 'asked again');
  }
});

test('a remembered name is recognized under its hash until another name takes the slot', () => {
  const fresh = (name: string): string => (JSON.parse(JSON.stringify(name)) as string).slice(0);
  assert.equal(recentMethod(fresh('eth_getBalance'), 7), undefined, 'nothing remembered yet');
  assert.equal(rememberMethod(fresh('eth_getBalance'), 7), canonicalMethod('eth_getBalance'));
  assert.equal(recentMethod(fresh('eth_getBalance'), 7), 'eth_getBalance');
  assert.equal(recentMethod(fresh('eth_getBalancf'), 7), undefined, 'same hash, another name');
  assert.equal(recentMethod(fresh('eth_getBalance'), 7 + 256), 'eth_getBalance', 'hashes are taken modulo the slots');
  assert.equal(rememberMethod(fresh('eth_call'), 7), 'eth_call');
  assert.equal(recentMethod(fresh('eth_getBalance'), 7), undefined, 'replaced');
  assert.equal(recentMethod(fresh('eth_call'), -249), 'eth_call', 'a negative hash');
});
