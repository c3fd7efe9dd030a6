import assert from 'node:assert/strict';
import { test } from 'node:test';
import { batchTexts, memberText, paramsText } from '../../src/jsonrpc/params-text.js';
import { seededRandom } from '../support/seeded-random.js';

test("each client library's layout: the params' own text", () => {
  const params = '["0x00000000000000000000000000000000000000aa","latest"]';
  assert.equal(paramsText(`{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":${params}}`), params); // viem
  assert.equal(paramsText(`{"method":"eth_getBalance","params":${params},"id":1,"jsonrpc":"2.0"}`), params); // ethers
  assert.equal(paramsText(`{"jsonrpc":"2.0","id":"4b6c","method":"eth_getBalance","params":${params}}`), params); // web3.js
  assert.equal(paramsText('{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}'), '[]');
});

test('whitespace around and inside is kept inside and dropped around', () => {
  const text = '{\n  "jsonrpc": "2.0",\n  "id": 1,\n  "method": "eth_call",\n  "params" :\t[ {"to": "0x01"},\r\n "latest" ] ,\n  "x": null\n}\n';
  assert.equal(paramsText(text), '[ {"to": "0x01"},\r\n "latest" ]');
});

test('numbers keep every digit the client wrote', () => {
  assert.equal(paramsText('{"id":1,"method":"m","params":[123456789012345678901234567890,-0,1e400]}'), '[123456789012345678901234567890,-0,1e400]');
});

test('the request\'s own params, not a "params" key or value nested inside it or after it', () => {
  assert.equal(paramsText('{"id":1,"params":[{"params":[1]}]}'), '[{"params":[1]}]');
  assert.equal(paramsText('{"id":1,"params":{"params":2}}'), '{"params":2}');
  assert.equal(paramsText('{"params":[1],"x":{"params":[2]}}'), '[1]');
  assert.equal(paramsText('{"params":[1],"method":"params"}'), '[1]');
  assert.equal(paramsText('{"method":"params","params":[3]}'), '[3]');
  assert.equal(paramsText('{"params":[1],"x":["params",{"a":"]}"}]}'), '[1]');
});

test('a repeated key: the last one, as JSON.parse takes it', () => {
  assert.equal(paramsText('{"params":[1],"id":1,"params":[2]}'), '[2]');
  assert.equal(paramsText('{"params":[1],"params":[2],"x":{"params":[3]}}'), '[2]');
});

test('no answer without params, or where only decoding could tell (escapes)', () => {
  assert.equal(paramsText('{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}'), undefined);
  assert.equal(paramsText('{"id":1,"method":"params"}'), undefined);
  assert.equal(paramsText('{"id":1,"par\\u0061ms":[1]}'), undefined);
  assert.equal(paramsText('{"id":1,"params":["a\\"b"]}'), undefined);
});

/** A random JSON value, with strings that look like keys and brackets now and then. */
function randomValue(random: () => number, depth: number): unknown {
  const pick = random();
  if (depth > 3 || pick < 0.35) {
    const scalars = [0, -1.5, 12345678901234, true, false, null, 'latest', 'params', '0xab', ']}', '{[', ',:', ' ', 'ключ ✓'];
    return scalars[Math.floor(random() * scalars.length)];
  }
  if (pick < 0.65) return Array.from({ length: Math.floor(random() * 4) }, () => randomValue(random, depth + 1));
  return randomObject(random, depth + 1);
}

function randomObject(random: () => number, depth: number): Record<string, unknown> {
  const keys = ['params', 'id', 'method', 'jsonrpc', 'a', 'params ', 'Params', '}'];
  const object: Record<string, unknown> = {};
  for (let n = Math.floor(random() * 5); n > 0; n--) object[keys[Math.floor(random() * keys.length)]!] = randomValue(random, depth);
  return object;
}

test("random requests: whenever an answer comes, it parses to JSON.parse's own params", () => {
  let answered = 0;
  for (let seed = 1; seed <= 3000; seed++) {
    const random = seededRandom(seed);
    const request = randomObject(random, 0);
    const layouts = [JSON.stringify(request), JSON.stringify(request, null, 2), JSON.stringify(request, null, '\t')];
    for (const text of layouts) {
      const expected = (JSON.parse(text) as { params?: unknown }).params;
      const found = paramsText(text);
      if (expected === undefined) {
        assert.equal(found, undefined, `seed ${seed}: ${text}`);
        continue;
      }
      assert.notEqual(found, undefined, `seed ${seed}: no params found in ${text}`);
      assert.deepEqual(JSON.parse(found!), expected, `seed ${seed}: ${text}`);
      answered++;
    }
  }
  assert.ok(answered > 1000, `only ${answered} requests had params`);
});

test('duplicate keys written by hand, in random order: the last params, as JSON.parse takes it', () => {
  for (let seed = 1; seed <= 2000; seed++) {
    const random = seededRandom(seed);
    const members = Array.from({ length: 1 + Math.floor(random() * 5) }, () => {
      const key = random() < 0.5 ? 'params' : 'id';
      return `"${key}":${JSON.stringify(randomValue(random, 1))}`;
    });
    const text = `{${members.join(',')}}`;
    const expected = (JSON.parse(text) as { params?: unknown }).params;
    const found = paramsText(text);
    assert.deepEqual(found === undefined ? undefined : JSON.parse(found), expected, `seed ${seed}: ${text}`);
  }
});

test('a batch: the text of each request in it, in order', () => {
  const items = ['{"id":1,"method":"a","params":[1]}', '{"id":2}', '[]', '7', 'null', '"x"', '{"params":{"a":[2,"]"]}}'];
  assert.deepEqual(batchTexts(`[${items.join(',')}]`), items);
  assert.deepEqual(batchTexts(`[ \n${items.join(' ,\n ')} \n]`), items);
  assert.deepEqual(batchTexts('[]'), []);
});

test("a batch with escapes: each request's own text, strings ending at their unescaped quote", () => {
  const items = [
    '{"id":12345678901234567891,"method":"a","params":[123456789012345678901234567890]}',
    '{"id":"\\u0041","method":"\\"],{\\"x\\":[1,"}',
    '{"id":"a\\\\","params":["\\\\\\"]}{,","\\\\"]}',
    '"\\\\\\\\"',
    '-1.5e+300',
    'null',
    '{"params":{"\\u0070arams":"\\/\\b\\f\\n\\r\\t ] }"}}',
    '{"id":2,"params":[]}',
  ];
  for (const text of [`[${items.join(',')}]`, `[ \n${items.join(' ,\n ')} \n]`]) {
    assert.deepEqual(batchTexts(text), items, text);
    assert.deepEqual(items.map((item) => JSON.parse(item) as unknown), JSON.parse(text));
  }
  // Requests without escapes are read in full; those with them are left to their parse.
  const texts = batchTexts(`[${items.join(',')}]`)!;
  assert.equal(paramsText(texts[0]!), '[123456789012345678901234567890]');
  assert.equal(memberText(texts[0]!, 'id'), '12345678901234567891');
  assert.equal(paramsText(texts[2]!), undefined);
  assert.equal(paramsText(texts[7]!), '[]');
});

/** A string that JSON.stringify writes with escapes: quotes, backslashes (one or a pair) and control characters beside brackets, braces and commas. */
function pickEscaped(random: () => number): string {
  const strings = ['"', '\\', '\\\\', '\\"', 'a"]},', '}\\', '\n{[', '\u0001,"x":'];
  return strings[Math.floor(random() * strings.length)]!;
}

test('random batches: as many texts as JSON.parse finds requests, each parsing to its request', () => {
  for (let seed = 1; seed <= 1000; seed++) {
    const random = seededRandom(seed);
    const batch = Array.from({ length: Math.floor(random() * 5) }, () => (random() < 0.8 ? randomObject(random, 0) : randomValue(random, 0)));
    // Now and then a request with strings JSON.stringify writes with escapes, anywhere in the batch.
    if (random() < 0.5) batch.splice(Math.floor(random() * (batch.length + 1)), 0, { id: pickEscaped(random), params: [pickEscaped(random), { [pickEscaped(random)]: 1 }] });
    for (const text of [JSON.stringify(batch), JSON.stringify(batch, null, 1)]) {
      const texts = batchTexts(text);
      assert.ok(texts, `seed ${seed}: ${text}`);
      assert.deepEqual(texts.map((item) => JSON.parse(item) as unknown), JSON.parse(text), `seed ${seed}: ${text}`);
    }
  }
});
