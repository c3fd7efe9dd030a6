/**
 * A plain call's params reach the node as the client wrote them (common-request.ts, params-text.ts):
 * digits past 2^53 survive, whatever the key order or spacing, alone, in a batch, over WebSocket and
 * HTTP. Requests the scan leaves alone (escapes outside the common layout) reach it as their parse,
 * serialized; in a batch each request is read on its own, so one's escapes leave the others' params
 * and ids past 2^53 as written.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { FakeNode } from '../support/fake-node.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { Probe } from '../support/ws-probe.js';

const ADDRESS = '0x00000000000000000000000000000000000000aa';

async function setup(t: TestContext, limits: { maxBatchSize?: number } = {}): Promise<{ node: FakeNode; evmux: TestGateway }> {
  const node = await FakeNode.start({ seed: 'params' });
  t.after(() => node.close());
  const evmux = await startGateway([node.url], { limits });
  t.after(() => evmux.close());
  return { node, evmux };
}

/** The params part of the frame the node received for evmux's request carrying `marker` (evmux writes its id last). */
function paramsSentWith(node: FakeNode, marker: string): string {
  const frame = node.frames.find((text) => text.includes(marker));
  assert.ok(frame, `the node received no frame with ${marker}; it received ${node.frames.slice(-5).join(' | ')}`);
  const start = frame.indexOf(',"params":') + ',"params":'.length;
  return frame.slice(start, frame.lastIndexOf(',"id":'));
}

async function post(evmux: TestGateway, body: string): Promise<unknown> {
  return JSON.parse(await postText(evmux, body));
}

/** The answer's text, where ids past 2^53 are read digit for digit. */
async function postText(evmux: TestGateway, body: string): Promise<string> {
  const response = await fetch(evmux.httpUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  assert.equal(response.status, 200);
  return response.text();
}

/** Ids past 2^53, which JSON.parse would round. */
const BIG_ID = '12345678901234567891';
const MAX_U64_ID = '18446744073709551615';
/**
 * A request whose id is written with escapes that a scan not stepping over them would misread: an
 * escaped quote before brackets, braces and a comma, an escaped backslash before the closing quote,
 * and a unicode escape. Its params are written with a unicode escape too.
 */
const ESCAPED = `{"method":"eth_getBalance","params":["0x00000000000000000000000000000000000000bb","lat\\u0065st"],"id":"x\\"],[{\\u0062,\\\\","jsonrpc":"2.0"}`;

test('over WebSocket: the params text as sent, big integers and spacing included, in every key order', async (t) => {
  const { node, evmux } = await setup(t);
  const probe = await Probe.open(evmux.wsUrl, t);
  const layouts = [
    (params: string) => `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":${params}}`,
    (params: string) => `{"method":"eth_getBalance","params":${params},"id":2,"jsonrpc":"2.0"}`,
    (params: string) => `{\n  "id": 3,\n  "params": ${params},\n  "jsonrpc": "2.0",\n  "method": "eth_getBalance"\n}`,
  ];
  for (const [k, layout] of layouts.entries()) {
    const params = `[ "${ADDRESS}",  ${k + 1}23456789012345678901234567890 ]`;
    probe.send(layout(params));
    await probe.waitFor((frame) => (frame.json as { id?: unknown } | undefined)?.id === k + 1);
    assert.equal(paramsSentWith(node, `${k + 1}23456789012345678901234567890`), params);
  }
});

test('over HTTP, alone and in a batch: the params text as sent', async (t) => {
  const { node, evmux } = await setup(t);
  await post(evmux, `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["${ADDRESS}",98765432109876543210987]}`);
  assert.equal(paramsSentWith(node, '98765432109876543210987'), `["${ADDRESS}",98765432109876543210987]`);

  const batch = `[ {"jsonrpc":"2.0","id":1,"method":"eth_chainId"},\n {"jsonrpc":"2.0","id":2,"method":"eth_getBalance","params":["${ADDRESS}", 11111111111111111111111]} ]`;
  const answers = (await post(evmux, batch)) as Array<{ id: number }>;
  assert.deepEqual(answers.map((answer) => answer.id).sort(), [1, 2]);
  assert.equal(paramsSentWith(node, '11111111111111111111111'), `["${ADDRESS}", 11111111111111111111111]`);
});

test('escapes: in the common layout the text as sent, in others the parse, serialized', async (t) => {
  const { node, evmux } = await setup(t);
  await post(evmux, `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["${ADDRESS}", "lat\\u0065st"]}`);
  assert.equal(paramsSentWith(node, ADDRESS), `["${ADDRESS}", "lat\\u0065st"]`);
  const other = '0x00000000000000000000000000000000000000bb';
  await post(evmux, `{"method":"eth_getBalance","params":["${other}", "lat\\u0065st"],"id":2,"jsonrpc":"2.0"}`);
  assert.equal(paramsSentWith(node, other), `["${other}","latest"]`);
});

test('characters outside ASCII in the params reach the node as sent, over both transports and in every layout', async (t) => {
  const { node, evmux } = await setup(t);
  const probe = await Probe.open(evmux.wsUrl, t);
  // Latin-1 (é, ÿ: one byte each in Latin-1, two in UTF-8), beyond it (ключ, ✓) and outside the BMP (𝄞).
  const text = 'é ÿ ключ ✓ 𝄞';
  const cases: Array<{ marker: string; send: (params: string) => Promise<unknown> }> = [
    { marker: 'ws-common', send: (params) => (probe.send(`{"jsonrpc":"2.0","id":7,"method":"eth_call","params":${params}}`), probe.waitFor((frame) => (frame.json as { id?: unknown } | undefined)?.id === 7)) },
    { marker: 'ws-other', send: (params) => (probe.send(`{"method":"eth_call","params":${params},"id":8,"jsonrpc":"2.0"}`), probe.waitFor((frame) => (frame.json as { id?: unknown } | undefined)?.id === 8)) },
    { marker: 'http-common', send: (params) => post(evmux, `{"jsonrpc":"2.0","id":9,"method":"eth_call","params":${params}}`) },
    { marker: 'http-other', send: (params) => post(evmux, `{"params":${params},"method":"eth_call","jsonrpc":"2.0","id":10}`) },
  ];
  for (const { marker, send } of cases) {
    const params = `[{"to":"${ADDRESS}","data":"0x","note":"${marker} ${text}"},"latest"]`;
    await send(params);
    assert.equal(paramsSentWith(node, marker), params, marker);
  }
});

test("in a batch, one request's escapes leave the others' params and big ids as written", async (t) => {
  const { node, evmux } = await setup(t);
  const first = `{"jsonrpc":"2.0","id":${BIG_ID},"method":"eth_getBalance","params":["${ADDRESS}", 22222222222222222222222]}`;
  const last = `{"params":["${ADDRESS}", 33333333333333333333333],"id":${MAX_U64_ID},"jsonrpc":"2.0","method":"eth_getBalance"}`;
  const answer = await postText(evmux, `[${first}, ${ESCAPED} ,${last}]`);
  assert.match(answer, new RegExp(`^\\[\\{"jsonrpc":"2\\.0","id":${BIG_ID},"result":"0x0"\\},.*\\{"jsonrpc":"2\\.0","id":${MAX_U64_ID},"result":"0x0"\\}\\]$`));
  assert.equal((JSON.parse(answer) as Array<{ id: unknown }>)[1]?.id, 'x"],[{b,\\');
  assert.equal(paramsSentWith(node, '22222222222222222222222'), `["${ADDRESS}", 22222222222222222222222]`);
  assert.equal(paramsSentWith(node, '33333333333333333333333'), `["${ADDRESS}", 33333333333333333333333]`);
  // The request with escapes, outside the common layout: its parse, serialized.
  assert.equal(paramsSentWith(node, '00bb"'), '["0x00000000000000000000000000000000000000bb","latest"]');
});

test('a batch over limits.maxBatchSize is refused under its first id as written', async (t) => {
  const { evmux } = await setup(t, { maxBatchSize: 2 });
  const call = (id: string): string => `{"jsonrpc":"2.0","id":${id},"method":"eth_blockNumber","params":[]}`;
  const answer = await postText(evmux, `[${call(BIG_ID)},${ESCAPED},${call('3')}]`);
  assert.match(answer, new RegExp(`^\\[\\{"jsonrpc":"2\\.0","id":${BIG_ID},"error":\\{"code":-32600,"message":"invalid request: batch of 3 exceeds the limit of 2`));
});
