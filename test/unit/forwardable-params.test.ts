import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_PARAMS_DEPTH, unforwardableParams } from '../../src/jsonrpc/forwardable-params.js';

const nested = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`;
const check = (text: string, known = true): string | undefined => unforwardableParams(JSON.parse(text), known ? text : undefined);

test('nesting: the params array is level one; MAX_PARAMS_DEPTH levels pass, one more does not', () => {
  assert.equal(MAX_PARAMS_DEPTH, 32);
  assert.equal(check(nested(32)), undefined);
  assert.match(check(nested(33)) ?? '', /^params nest deeper than 32 levels/);
  assert.match(check(`[{"a":${nested(31)}}]`) ?? '', /deeper than 32/, 'objects count as levels');
  assert.equal(check(`[{"a":${nested(30)}}]`), undefined);
  assert.match(check(nested(33), false) ?? '', /deeper than 32/, 'text not known');
});

test('nesting far past the limit is found without recursing through it', () => {
  const text = nested(200_000);
  assert.match(check(text) ?? '', /deeper than 32/);
});

test('short text cannot nest too deeply and is not walked', () => {
  // 64 characters hold at most 32 levels; this would be refused if the text were not trusted.
  const params = JSON.parse(nested(40)) as unknown;
  assert.equal(unforwardableParams(params, '[]'), undefined);
  assert.match(unforwardableParams(params, ' '.repeat(65)) ?? '', /deeper than 32/);
});

test('unpaired surrogates written as escapes, in values and keys, are named; pairs and plain text pass', () => {
  assert.match(check('["0x\\ud800"]') ?? '', /^params hold an unpaired UTF-16 surrogate \(\\ud800\) in a string/);
  assert.match(check('[{"a":{"\\udfff":1}}]') ?? '', /\(\\udfff\)/);
  assert.match(check('["\\ude00\\ud83d"]') ?? '', /\(\\ude00\)/, 'a low surrogate before a high one is no pair');
  assert.equal(check('["\\ud83d\\ude00", "lat\\u0065st"]'), undefined);
  assert.equal(check('["😀"]'), undefined);
});

test('strings are looked at only when the text has escapes or is not known', () => {
  // A text without a backslash cannot have produced a lone surrogate, so it is not searched for one.
  assert.equal(unforwardableParams(['\ud800', 'x'.repeat(70)], `["x","${'x'.repeat(70)}"]`), undefined);
  assert.match(unforwardableParams(['\ud800', 'x'.repeat(70)], undefined) ?? '', /surrogate/);
});

test('params that are not arrays or objects, and no params, pass', () => {
  assert.equal(unforwardableParams(undefined, undefined), undefined);
  assert.equal(unforwardableParams([1, true, null, 'x'], undefined), undefined);
});
