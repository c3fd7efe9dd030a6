import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChainGuard } from '../../src/upstream/chain-guard.js';

test('chain guard: a configured chain is the only one accepted', () => {
  const guard = new ChainGuard(1n);
  assert.equal(guard.chainIdHex, '0x1');
  assert.deepEqual(guard.check('0x1'), { ok: true });
  assert.deepEqual(guard.check('0x01'), { ok: true }, 'leading zeros are the same number');
  assert.deepEqual(guard.check('0xaa36a7'), { ok: false, reason: 'serves chain 11155111, not chain 1 (chainId in the config)' });
});

test('chain guard: unconfigured, the first answer sets the chain', () => {
  const guard = new ChainGuard(undefined);
  assert.equal(guard.chainIdHex, undefined);
  assert.deepEqual(guard.check('0x7A69'), { ok: true });
  assert.equal(guard.chainIdHex, '0x7a69');
  assert.deepEqual(guard.check('0x5'), { ok: false, reason: 'serves chain 5, not chain 31337 (the first node to answer)' });
});

test('chain guard: an answer that is not a chain id is refused and sets nothing', () => {
  const guard = new ChainGuard(undefined);
  assert.deepEqual(guard.check(31337), { ok: false, reason: 'eth_chainId answered 31337, not a chain id' });
  assert.deepEqual(guard.check(null), { ok: false, reason: 'eth_chainId answered null, not a chain id' });
  assert.deepEqual(guard.check('0x'), { ok: false, reason: 'eth_chainId answered "0x", not a chain id' });
  assert.equal(guard.chainIdHex, undefined);
});
