import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ParamsJson, requestFrame } from '../../src/upstream/request-frame.js';

test('a request frame is the JSON of the request, byte for byte, for ids of any length', () => {
  for (const id of [0, 7, 9, 10, 99, 100, 123_456, 2 ** 31, Number.MAX_SAFE_INTEGER]) {
    const frame = requestFrame(id, 'eth_getBalance', ['0x00000000000000000000000000000000000000aa', 'latest']);
    const expected = JSON.stringify({ jsonrpc: '2.0', method: 'eth_getBalance', params: ['0x00000000000000000000000000000000000000aa', 'latest'], id });
    assert.equal(frame.toString('utf8'), expected);
    assert.equal(frame.length, Buffer.byteLength(expected));
  }
});

test('methods and params outside ASCII, objects and empty params are encoded as JSON', () => {
  const params = [{ to: '0x01', data: '0x', note: 'ключ "7" \\ ✓ \u0000' }];
  const frame = requestFrame(42, 'méthode_✓', params);
  assert.deepEqual(JSON.parse(frame.toString('utf8')), { jsonrpc: '2.0', id: 42, method: 'méthode_✓', params });
  assert.equal(requestFrame(1, 'eth_chainId', []).toString('utf8'), '{"jsonrpc":"2.0","method":"eth_chainId","params":[],"id":1}');
});

test('params of every size and alphabet come out as their JSON: short and long, ASCII and not, non-ASCII at the start or end', () => {
  const samples: unknown[] = [
    [],
    ['0x' + 'ab'.repeat(20), 'latest'],
    ['é'],
    ['0x' + 'a'.repeat(200) + '✓'],
    ['✓' + 'a'.repeat(200)],
    ['x'.repeat(250)],
    ['x'.repeat(254)],
    ['x'.repeat(300)],
    [{ data: '0x' + 'cd'.repeat(5000), note: 'ключ' }],
  ];
  for (const params of samples) {
    for (const method of ['eth_call', 'eth_getBalance']) {
      const frame = requestFrame(12_345, method, params);
      const expected = JSON.stringify({ jsonrpc: '2.0', method, params, id: 12_345 });
      assert.equal(frame.toString('utf8'), expected);
      assert.equal(frame.length, Buffer.byteLength(expected));
    }
  }
});

test('params sent as written: the same bytes whether they are copied as ASCII or encoded', () => {
  const ascii = '[ "0x00000000000000000000000000000000000000aa",  123456789012345678901234567890 ]';
  const other = '[{"note":"é ключ ✓ 𝄞"}, "latest"]';
  for (const [text, isAscii] of [
    [ascii, true],
    [ascii, false],
    [other, false],
  ] as const) {
    const frame = requestFrame(77, 'eth_call', new ParamsJson(text, isAscii));
    assert.equal(frame.toString('utf8'), `{"jsonrpc":"2.0","method":"eth_call","params":${text},"id":77}`);
  }
});
