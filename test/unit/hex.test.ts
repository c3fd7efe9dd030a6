import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isHash, quantity } from '../../src/jsonrpc/hex.js';

test('quantity reads 0x hex of 1 to 64 digits, either case, and nothing else', () => {
  assert.equal(quantity('0x0'), 0n);
  assert.equal(quantity('0xFf'), 255n);
  assert.equal(quantity(`0x${'f'.repeat(64)}`), 2n ** 256n - 1n);
  for (const bad of ['0x', '0x1g', '1', ' 0x1', '0x1 ', `0x${'1'.repeat(65)}`, 1, null, undefined, ['0x1']]) {
    assert.equal(quantity(bad), undefined, JSON.stringify(bad));
  }
});

test('isHash takes 32 bytes of 0x hex, either case', () => {
  assert.ok(isHash(`0x${'aB'.repeat(32)}`));
  for (const bad of [`0x${'a'.repeat(63)}`, `0x${'a'.repeat(65)}`, `0x${'g'.repeat(64)}`, 'a'.repeat(66), 42, null]) {
    assert.equal(isHash(bad), false, JSON.stringify(bad));
  }
});
