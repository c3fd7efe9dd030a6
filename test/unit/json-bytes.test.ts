import assert from 'node:assert/strict';
import { test } from 'node:test';
import { digitCount, isDigitsId, putBytes, putDigits } from '../../src/jsonrpc/json-bytes.js';

test('integers are written as the same digits JSON.stringify gives', () => {
  for (const value of [0, 1, 9, 10, 99, 100, 101, 65_535, 2 ** 31, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER]) {
    const digits = digitCount(value);
    assert.equal(digits, String(value).length, `digits of ${value}`);
    const target = Buffer.alloc(digits + 2, 0x2e);
    assert.equal(putDigits(target, 1, value, digits), digits + 1);
    assert.equal(target.toString('latin1'), `.${JSON.stringify(value)}.`);
  }
});

test('short and long pieces are copied whole at the offset, nothing around them touched', () => {
  for (const length of [0, 1, 16, 17, 22, 64, 65, 4096]) {
    const source = Buffer.from(Array.from({ length }, (_, i) => 0x41 + (i % 26)));
    const target = Buffer.alloc(length + 4, 0x2e);
    assert.equal(putBytes(target, 2, source), length + 2);
    assert.equal(target.subarray(2, length + 2).equals(source), true);
    assert.equal(target.subarray(0, 2).toString(), '..');
    assert.equal(target.subarray(length + 2).toString(), '..');
  }
});

test('only non-negative safe integers take the digit path', () => {
  for (const id of [0, 1, 42, Number.MAX_SAFE_INTEGER]) assert.equal(isDigitsId(id), true, String(id));
  for (const id of [-1, 1.5, Number.MAX_SAFE_INTEGER + 1, Infinity, NaN, '1', null, undefined]) assert.equal(isDigitsId(id), false, String(id));
});
