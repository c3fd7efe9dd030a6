import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hiddenPartsOf, hideParts } from '../../src/log.js';

test("what logs hide of a node's URL and headers, as written and decoded, 4 characters or longer", () => {
  const parts = hiddenPartsOf('wss://alice:p%40ssw0rd@node.example/v3/2b7c9d1f?apikey=q%2Bkey9&x=ab', { authorization: 'Bearer t0ken-abc' });
  for (const part of ['alice', 'p%40ssw0rd', 'p@ssw0rd', '2b7c9d1f', 'q%2Bkey9', 'q+key9', 'Bearer t0ken-abc', 't0ken-abc']) assert.ok(parts.includes(part), part);
  assert.ok(!parts.includes('v3') && !parts.includes('ab'), 'known words and parts under 4 characters are not looked for');
  assert.deepEqual(hiddenPartsOf('not a url'), []);
});

test('hideParts shows each part as ***, the longest first', () => {
  assert.equal(hideParts('Cannot GET /v3/abcd1234?k=abcd', ['abcd', 'abcd1234']), 'Cannot GET /v3/***?k=***');
  assert.equal(hideParts('no secrets here', ['abcd1234']), 'no secrets here');
});
