import assert from 'node:assert/strict';
import { test } from 'node:test';
import { memberText } from '../../src/jsonrpc/params-text.js';
import { answerId, IdText, idJson } from '../../src/jsonrpc/request-id.js';

/** The id a request's text is answered with, as JSON text. */
const answeredWith = (text: string): string => idJson(answerId((JSON.parse(text) as { id: number | string | null }).id, text));

test('ids a double holds exactly stay numbers; strings and null stay as they are', () => {
  for (const text of ['{"id":7}', '{"id":0}', '{"id":9007199254740991}', '{"id":-3}', '{"id":1.5}', '{"id":"12345678901234567890"}', '{"id":null}']) {
    const id = (JSON.parse(text) as { id: unknown }).id as number | string | null;
    assert.equal(answerId(id, text), id, text);
  }
});

test('a numeric id that a double cannot give back is answered with the text the caller wrote', () => {
  assert.equal(answeredWith('{"jsonrpc":"2.0","id":12345678901234567890,"method":"eth_chainId"}'), '12345678901234567890');
  assert.equal(answeredWith('{"jsonrpc":"2.0","id":18446744073709551615,"method":"eth_chainId"}'), '18446744073709551615');
  assert.equal(answeredWith('{"method":"eth_chainId","id": 9007199254740993 ,"jsonrpc":"2.0"}'), '9007199254740993');
  assert.equal(answeredWith('{"jsonrpc":"2.0","id":1e400,"method":"eth_chainId"}'), '1e400');
  assert.equal(answeredWith('{"jsonrpc":"2.0","id":-1e400,"method":"eth_chainId"}'), '-1e400');
  assert.equal(answeredWith('{"jsonrpc":"2.0","id":1e21,"method":"eth_chainId"}'), '1e21');
  assert.equal(answeredWith('{"id":1,"params":[{"id":2}],"id":12345678901234567890}'), '12345678901234567890', 'the last id, not one nested in params');
});

test('an integer past 2^53 that a double holds exactly stays a number', () => {
  // 2^53 + 2 is a double exactly: JSON.stringify writes the same digits back.
  assert.equal(answerId(2 ** 53 + 2, '{"id":9007199254740994}'), 2 ** 53 + 2);
});

test('without the request text, or with escapes in it, the parsed id is used', () => {
  assert.equal(answerId(12345678901234567000, undefined), 12345678901234567000);
  assert.equal(answerId(12345678901234567000, '{"id":12345678901234567890,"method":"a\\u0062"}'), 12345678901234567000);
  assert.ok(answerId(12345678901234567000, '{"id":12345678901234567890}') instanceof IdText);
});

test('memberText: any top-level member, the last when repeated, never a nested one', () => {
  assert.equal(memberText('{"jsonrpc":"2.0","id":7,"method":"m"}', 'id'), '7');
  assert.equal(memberText('{ "id" : "a b" , "x":1}', 'id'), '"a b"');
  assert.equal(memberText('{"x":{"id":1},"y":[{"id":2}]}', 'id'), undefined);
  assert.equal(memberText('{"id":1,"id":2}', 'id'), '2');
  assert.equal(memberText('{"idx":1}', 'id'), undefined);
  assert.equal(memberText('[{"id":1}]', 'id'), undefined);
});
