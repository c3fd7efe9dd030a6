/**
 * Requests a node cannot read. anvil answers them with an error under id null, which names no
 * request; evmux used to wait out the call's timeout on every node in turn, and each timeout counted
 * against that node's circuit breaker. Now evmux refuses the params it knows nodes cannot read
 * (forwardable-params.ts), and a node's error under id null answers the one call in flight on its
 * socket.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { FakeNode } from '../support/fake-node.js';
import { devnetGatewayForFile } from '../support/devnet-gateway.js';
import { startGateway } from '../support/gateway.js';
import { Probe } from '../support/ws-probe.js';

const EMITTER = '0x5FbDB2315678afecb367f032d93F642f64180aa3';
const nested = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`;

/** Request texts with their expected refusal; the surrogates are written as escapes, as a client must. */
const unreadable: Array<{ name: string; text: (id: number) => string; message: RegExp }> = [
  {
    name: 'params nested 200 deep',
    text: (id) => `{"jsonrpc":"2.0","id":${id},"method":"eth_call","params":[${nested(199)},"latest"]}`,
    message: /^eth_call: params nest deeper than 32 levels, more than nodes accept$/,
  },
  {
    name: 'params nested 33 deep, in another layout',
    text: (id) => `{"params":[${nested(32)}],"method":"eth_call","id":${id},"jsonrpc":"2.0"}`,
    message: /^eth_call: params nest deeper than 32 levels/,
  },
  {
    name: 'a lone surrogate in a string',
    text: (id) => `{"jsonrpc":"2.0","id":${id},"method":"eth_call","params":[{"to":"${EMITTER}","data":"0x\\ud800"},"latest"]}`,
    message: /^eth_call: params hold an unpaired UTF-16 surrogate \(\\ud800\) in a string, which nodes cannot read$/,
  },
  {
    name: 'a lone surrogate in a key',
    text: (id) => `{"jsonrpc":"2.0","id":"k${id}","method":"eth_call","params":[{"to":"${EMITTER}","\\udc00":1},"latest"]}`,
    message: /unpaired UTF-16 surrogate \(\\udc00\)/,
  },
];

const files = devnetGatewayForFile(2);

async function post(body: string): Promise<Record<string, unknown>> {
  const response = await fetch(files.evmux.httpUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  return (await response.json()) as Record<string, unknown>;
}

function assertRefused(answer: Record<string, unknown>, message: RegExp, where: string): void {
  const error = answer['error'] as { code?: unknown; message?: unknown } | undefined;
  assert.equal(error?.code, -32602, `${where}: ${JSON.stringify(answer)}`);
  assert.match(String(error?.message), message, where);
}

test('params anvil cannot read are refused at once, naming why; no node is blamed for them', async (t: TestContext) => {
  const probe = await Probe.open(files.evmux.wsUrl, t);
  for (const [index, row] of unreadable.entries()) {
    const started = performance.now();
    const overHttp = await post(row.text(index));
    assertRefused(overHttp, row.message, `${row.name} over HTTP`);
    probe.send(row.text(100 + index));
    const expectedId = row.text(100 + index).includes('"id":"') ? `k${100 + index}` : 100 + index;
    const frame = await probe.waitFor((candidate) => (candidate.json as { id?: unknown } | undefined)?.id === expectedId);
    assertRefused(frame.json as Record<string, unknown>, row.message, `${row.name} over WebSocket`);
    assert.ok(performance.now() - started < 1000, `${row.name}: answered in ${Math.round(performance.now() - started)} ms`);
  }
  const blamed = files.evmux.logs.filter((line) => line['breaker'] === 'open' || line['msg'] === 'upstream not usable');
  assert.deepEqual(blamed, [], 'no breaker opened and no node left rotation');
});

test('params at the limits still reach anvil, which answers them under their id', async () => {
  // 32 levels, the most evmux forwards: anvil reads the request and refuses the call itself.
  const deep = await post(`{"jsonrpc":"2.0","id":7,"method":"eth_call","params":[${nested(31)},"latest"]}`);
  assert.equal(deep['id'], 7);
  assert.equal((deep['error'] as { code?: unknown } | undefined)?.code, -32602, JSON.stringify(deep));
  assert.doesNotMatch(JSON.stringify(deep), /deeper than/, 'anvil answered, not evmux');
  // A surrogate pair written as escapes is one character, which nodes read.
  const paired = await post(`{"jsonrpc":"2.0","id":8,"method":"eth_getBalance","params":["${EMITTER}","\\ud83d\\ude00"]}`);
  assert.equal(paired['id'], 8);
  assert.doesNotMatch(JSON.stringify(paired), /surrogate/, 'anvil answered, not evmux');
  const balance = await post(`{"jsonrpc":"2.0","id":9,"method":"eth_getBalance","params":["${EMITTER}","lat\\u0065st"]}`);
  assert.equal(balance['result'], '0x0', 'escapes that decode to plain text are forwarded');
});

test('a node error under id null answers the one call in flight on that socket; with two in flight neither is guessed, and the other keeps its answer', async (t: TestContext) => {
  const node = await FakeNode.start({ seed: 'unreadable' });
  t.after(() => node.close());
  node.unreadable = (text) => text.includes('"eth_getStorageAt"');
  node.handle('eth_getCode', async () => {
    await new Promise((resolve) => setTimeout(resolve, 300));
    return '0xc0de';
  });
  // Probes are made rare, so that only the test's own calls are in flight on the socket.
  const gateway = await startGateway([node.url], { health: { probeIntervalMs: 60_000, recoveryThreshold: 1 }, requestTimeoutMs: 1500 });
  t.after(() => gateway.close());
  const call = async (method: string, params: unknown[], id: number): Promise<Record<string, unknown>> => {
    const response = await fetch(gateway.httpUrl, { method: 'POST', body: JSON.stringify({ jsonrpc: '2.0', id, method, params }) });
    return (await response.json()) as Record<string, unknown>;
  };
  const storageParams = [EMITTER, '0x0', 'latest'];

  const started = performance.now();
  const alone = await call('eth_getStorageAt', storageParams, 1);
  assert.deepEqual(alone, { jsonrpc: '2.0', id: 1, error: { code: -32600, message: 'Invalid request' } });
  assert.ok(performance.now() - started < 1000, `answered in ${Math.round(performance.now() - started)} ms, not at the timeout`);
  assert.equal(gateway.logs.filter((line) => line['msg'] === 'upstream could not read a request it was sent (error with id null)').length, 1);

  const slow = call('eth_getCode', [EMITTER, 'latest'], 2);
  await new Promise((resolve) => setTimeout(resolve, 50));
  const sent = performance.now();
  const unmatched = call('eth_getStorageAt', storageParams, 3);
  assert.deepEqual(await slow, { jsonrpc: '2.0', id: 2, result: '0xc0de' }, 'the other call keeps its own answer');
  const late = await unmatched;
  // Unmatched, the call waits out its timeout; the router's next attempt, alone, gets the node's error.
  assert.ok(performance.now() - sent >= 1400, `answered after ${Math.round(performance.now() - sent)} ms: ${JSON.stringify(late)}`);
  const unread = gateway.logs.filter((line) => line['msg'] === 'upstream could not read a request it was sent (error with id null)');
  assert.equal(unread.length, 1, 'a warning per 10 s, the first at once');
});
