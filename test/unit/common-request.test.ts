import assert from 'node:assert/strict';
import { test } from 'node:test';
import { commonRequest } from '../../src/jsonrpc/common-request.js';
import { seededRandom } from '../support/seeded-random.js';

/** What the general path would see: the request JSON.parse makes of `text`, when it is the common one. */
function asParsed(text: string): { id: number; method: string; params: unknown[] } | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const request = value as Record<string, unknown>;
  if (Object.keys(request).join() !== 'jsonrpc,id,method,params' || request.jsonrpc !== '2.0') return undefined;
  const { id, method, params } = request;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) return undefined;
  if (typeof method !== 'string' || !Array.isArray(params)) return undefined;
  return { id, method, params };
}

/** Accepted only as JSON.parse reads the same request; the params' text is the client's own. */
function assertAgrees(text: string): void {
  const found = commonRequest(text);
  if (found === undefined) return;
  const parsed = asParsed(text);
  assert.ok(parsed, `accepted what the general path reads differently: ${text}`);
  assert.deepEqual({ id: found.id, method: found.method, params: found.params }, parsed, text);
  assert.deepEqual(JSON.parse(found.paramsText), parsed.params, text);
  assert.ok(text.includes(`"params":${found.paramsText}}`), text);
}

test('what viem and web3.js send is read without parsing the envelope', () => {
  const params = '["0x00000000000000000000000000000000000000aa","latest"]';
  const found = commonRequest(`{"jsonrpc":"2.0","id":42,"method":"eth_getBalance","params":${params}}`);
  assert.deepEqual(found, { id: 42, method: 'eth_getBalance', params: ['0x00000000000000000000000000000000000000aa', 'latest'], paramsText: params });
  assert.deepEqual(commonRequest('{"jsonrpc":"2.0","id":0,"method":"eth_chainId","params":[]}')?.params, []);
  // Numbers in params keep every digit in the text the node gets.
  assert.equal(commonRequest('{"jsonrpc":"2.0","id":1,"method":"m","params":[123456789012345678901234567890]}')?.paramsText, '[123456789012345678901234567890]');
  // Escapes in params are the parser's business; the text goes to the node as written.
  assert.equal(commonRequest('{"jsonrpc":"2.0","id":1,"method":"m","params":["a\\"b\\u0041"]}')?.params[0], 'a"bA');
});

test('anything else is left to the general path', () => {
  const refused = [
    '{"method":"eth_chainId","params":[],"id":1,"jsonrpc":"2.0"}', // ethers' order
    '{"jsonrpc":"2.0","id":"1","method":"m","params":[]}',
    '{"jsonrpc":"2.0","id":-1,"method":"m","params":[]}',
    '{"jsonrpc":"2.0","id":1.5,"method":"m","params":[]}',
    '{"jsonrpc":"2.0","id":1e3,"method":"m","params":[]}',
    '{"jsonrpc":"2.0","id":01,"method":"m","params":[]}',
    '{"jsonrpc":"2.0","id":1234567890123456,"method":"m","params":[]}',
    '{"jsonrpc":"2.0","id":null,"method":"m","params":[]}',
    '{"jsonrpc":"2.0","id":1,"method":"","params":[]}',
    '{"jsonrpc":"2.0","id":1,"method":"a.b","params":[]}',
    '{"jsonrpc":"2.0","id":1,"method":"eth_\\u0063all","params":[]}',
    `{"jsonrpc":"2.0","id":1,"method":"${'m'.repeat(129)}","params":[]}`,
    '{"jsonrpc":"2.0","id":1,"method":"m"}',
    '{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":1}}',
    '{"jsonrpc":"2.0","id":1,"method":"m","params":null}',
    '{"jsonrpc":"2.0","id":1,"method":"m","params":[1],"id":2}',
    '{"jsonrpc":"2.0","id":1,"method":"m","params":[1],"params":[2]}',
    '{"jsonrpc":"2.0","id":1,"method":"m","params":[1]} ',
    '{"jsonrpc":"2.0","id":1,"method":"m","params":[1]}}',
    '{"jsonrpc":"2.0","id":1,"method":"m","params":[1}',
    '{"jsonrpc":"2.0","id":1,"method":"m","params":}',
    '{"jsonrpc":"2.0","id":1,"method":"m","params":[1]',
    '{"jsonrpc":"2.0","id":1,"method":"m","params":[1]}{"a":1}',
    '{"jsonrpc":"2.0","id":1,"method":"m","params":[1],"x":{"y":[2]}}',
    '{"jsonrpc":"2.0" ,"id":1,"method":"m","params":[]}',
    '{"jsonrpc":"2.0","id":1, "method":"m","params":[]}',
    '{"jsonrpc":"1.0","id":1,"method":"m","params":[]}',
    '[{"jsonrpc":"2.0","id":1,"method":"m","params":[]}]',
  ];
  for (const text of refused) assert.equal(commonRequest(text), undefined, text);
  // A name read before is recognized whole; one that differs from it in a character that is not
  // a name's (same length, same middle and last character) is still refused.
  assert.equal(commonRequest('{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":[]}')?.method, 'eth_getBalance');
  for (const name of ['eth.getBalance', 'eth getBalance', 'eth_getBa\\ance', 'eth_g\u0001tBalance']) {
    const text = `{"jsonrpc":"2.0","id":1,"method":"${name}","params":[]}`;
    assert.equal(commonRequest(text), undefined, text);
  }
  // The one whitespace the format allows inside a single value: kept, and still the same request.
  assertAgrees('{"jsonrpc":"2.0","id":1,"method":"m","params": [ 1 ,2 ] }');
});

test('random near-misses: every text accepted is the request JSON.parse reads, and every common one is accepted', () => {
  const pieces = ['{', '}', '[', ']', ',', ':', '"', '"params"', '"id"', '"method"', '0', '7', '-', '.', 'e', ' ', '\\', '"x"', 'null', '[1]', '{"a":[2]}', 'ключ'];
  let accepted = 0;
  for (let seed = 1; seed <= 20_000; seed++) {
    const random = seededRandom(seed);
    const id = Math.floor(random() * 10 ** Math.floor(random() * 16));
    const method = ['eth_call', 'eth_getBalance', 'm', 'web3_clientVersion'][Math.floor(random() * 4)]!;
    const params = JSON.stringify(Array.from({ length: Math.floor(random() * 3) }, () => (random() < 0.5 ? '0xab' : { to: '0x01', n: 1 })));
    const common = `{"jsonrpc":"2.0","id":${id},"method":"${method}","params":${params}}`;
    if (seed % 2 === 0) {
      const found = commonRequest(common);
      assert.ok(found, `seed ${seed}: not accepted: ${common}`);
      assertAgrees(common);
      accepted++;
      continue;
    }
    // Splice a few random pieces into the common text anywhere, and see that nothing wrong gets through.
    let text = common;
    for (let n = 1 + Math.floor(random() * 3); n > 0; n--) {
      const at = Math.floor(random() * (text.length + 1));
      const cut = random() < 0.3 ? 1 : 0;
      text = text.slice(0, at) + pieces[Math.floor(random() * pieces.length)]! + text.slice(at + cut);
    }
    assertAgrees(text);
  }
  assert.equal(accepted, 10_000);
});
