import assert from 'node:assert/strict';
import { test } from 'node:test';
import { answeredBlockNumber, isNullResult, lastBlockNumber, parseUpstreamFrame as parseBytes, replyResult } from '../../src/upstream/reply.js';

const parseUpstreamFrame = (text: string) => parseBytes(Buffer.from(text));

test('a plain response keeps its result bytes untouched after the id', () => {
  const frame = '{"jsonrpc":"2.0","id":42,"result":{"b":1,"a":"0x01"}}';
  const parsed = parseUpstreamFrame(frame);
  assert.equal(parsed.id, 42);
  assert.equal(parsed.reply?.tail.toString(), '"result":{"b":1,"a":"0x01"}}');
  assert.deepEqual(replyResult(parsed.reply!), { b: 1, a: '0x01' });
});

test('an error response carries the parsed error', () => {
  const parsed = parseUpstreamFrame('{"jsonrpc":"2.0","id":7,"error":{"code":3,"message":"execution reverted","data":"0x"}}');
  assert.equal(parsed.id, 7);
  assert.deepEqual(parsed.reply?.error, { code: 3, message: 'execution reverted', data: '0x' });
  assert.equal(parsed.reply?.tail.toString(), '"error":{"code":3,"message":"execution reverted","data":"0x"}}');
});

test('"error":null ahead of the result is a result, as a Go struct without omitempty writes it', () => {
  const parsed = parseUpstreamFrame('{"jsonrpc":"2.0","id":9,"error":null,"result":"0x7a69"}');
  assert.equal(parsed.id, 9);
  assert.equal(parsed.reply?.error, undefined);
  assert.equal(replyResult(parsed.reply!), '0x7a69');
});

test('responses with another field order still work (slow path)', () => {
  const parsed = parseUpstreamFrame('{"id":5,"result":"0x1","jsonrpc":"2.0"}');
  assert.equal(parsed.id, 5);
  assert.equal(parsed.reply?.tail.toString(), '"result":"0x1"}');
});

test('notifications are returned parsed', () => {
  const parsed = parseUpstreamFrame('{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x1","result":{}}}');
  assert.equal(parsed.id, undefined);
  assert.equal(parsed.message?.method, 'eth_subscription');
});

test('garbage throws', () => {
  assert.throws(() => parseUpstreamFrame('<html>502 Bad Gateway</html>'), SyntaxError);
  assert.throws(() => parseUpstreamFrame('[1,2]'), SyntaxError);
});

test('a null result is recognised without parsing', () => {
  assert.equal(isNullResult(parseUpstreamFrame('{"jsonrpc":"2.0","id":1,"result":null}').reply!), true);
  assert.equal(isNullResult(parseUpstreamFrame('{"jsonrpc":"2.0","id":1,"result":"0x0"}').reply!), false);
});

test('multi-byte UTF-8 in a result passes through byte for byte', () => {
  const parsed = parseUpstreamFrame('{"jsonrpc":"2.0","id":9,"result":"héllo ✓"}');
  assert.equal(parsed.reply?.tail.toString(), '"result":"héllo ✓"}');
});

test('a frame read in place matches the usual layout in every byte up to its result', () => {
  const usual = '{"jsonrpc":"2.0","id":42,"result":"0x1"}';
  assert.ok(parseUpstreamFrame(usual).reply?.frame !== undefined, 'the usual layout is read in place');
  // One byte changed anywhere in `{"jsonrpc":"2.0","id":42,"result":`: never read in place. What
  // still parses as JSON goes through the general path (its reply keeps no frame); the rest throws.
  const readUpTo = usual.indexOf('"0x1"');
  for (let at = 0; at < readUpTo; at++) {
    for (const replacement of ['x', ' ']) {
      if (usual[at] === replacement) continue;
      const changed = usual.slice(0, at) + replacement + usual.slice(at + 1);
      let frame: Buffer | undefined;
      try {
        frame = parseUpstreamFrame(changed).reply?.frame;
      } catch {
        continue;
      }
      assert.equal(frame, undefined, changed);
    }
  }
});

test('a usual-layout answer cut short, or with bytes after it, is refused, not passed on unread', () => {
  for (const text of ['{"jsonrpc":"2.0","id":7,"result":{"a":[1,2', '{"jsonrpc":"2.0","id":7,"result":"0x1"}<html>oops</html>', '{"jsonrpc":"2.0","id":7,"result":"0x1"']) {
    assert.throws(() => parseUpstreamFrame(text), SyntaxError, text);
  }
  const spaced = parseUpstreamFrame('{"jsonrpc":"2.0","id":7,"result":"0x1"}\n');
  assert.ok('reply' in spaced && spaced.reply.tail.toString() === '"result":"0x1"}\n');
});

test("a block answer's number is read from its bytes: the header's, not a transaction's", () => {
  const block = (fields: string) => answeredBlockNumber(parseUpstreamFrame(`{"jsonrpc":"2.0","id":1,"result":{${fields}}}`).reply!);
  assert.equal(block('"hash":"0xab","difficulty":"0x0","number":"0x1f","transactions":[{"blockNumber":"0x1f"}]'), 31);
  assert.equal(block('"number":"0xFFFFFFFFFFFFF"'), 2 ** 52 - 1);
  assert.equal(block('"number":"0x10000000000000"'), undefined);
  assert.equal(block('"hash":"0xab"'), undefined);
  assert.equal(block('"number":"0x"'), undefined);
  assert.equal(block('"number":"0x1g"'), undefined);
  assert.equal(answeredBlockNumber(parseUpstreamFrame('{"jsonrpc":"2.0","id":1,"result":null}').reply!), undefined);
  assert.equal(answeredBlockNumber(parseUpstreamFrame('{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"\\"number\\":\\"0x5\\""}}').reply!), undefined);
});

test("the last blockNumber in an answer is read from its bytes: a log list's highest, a receipt's", () => {
  const last = (result: string) => lastBlockNumber(parseUpstreamFrame(`{"jsonrpc":"2.0","id":1,"result":${result}}`).reply!);
  assert.equal(last('[{"blockNumber":"0x9","logIndex":"0x0"},{"blockNumber":"0xa","logIndex":"0x0"}]'), 10);
  assert.equal(last('{"blockHash":"0xab","blockNumber":"0x1f","logs":[{"blockNumber":"0x1f"}],"status":"0x1"}'), 31);
  assert.equal(last('[]'), undefined);
  assert.equal(last('null'), undefined);
  assert.equal(last('[{"blockNumber":"0x10000000000000"}]'), undefined);
  assert.equal(last('[{"blockNumber":null}]'), undefined);
  assert.equal(lastBlockNumber(parseUpstreamFrame('{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"\\"blockNumber\\":\\"0x5\\""}}').reply!), undefined);
});
