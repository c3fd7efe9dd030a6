/**
 * Large answers over HTTP. One a client reads comes whole. One a client does not read on is cut by
 * uWebSockets.js after 10 s, as before, but no longer in silence: evmux hands large answers to uWS
 * as the client takes them, so the cut is seen, counted
 * (`evmux_client_rejections_total{reason="answer_unread"}`) and logged; a client that reads part of
 * one and hangs up is not that. The fake node serves the answer: anvil cannot be made to produce
 * tens of MB of logs in a test's time.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { FakeNode } from '../support/fake-node.js';
import { startGateway } from '../support/gateway.js';
import { waitUntil } from '../support/stream-recorder.js';

const ANSWER_MB = 16;
const REQUEST = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_getLogs', params: [{}] });

test('a large HTTP answer comes whole to a client that reads it, and its cut is counted for one that does not', { timeout: 60_000 }, async (t) => {
  const node = await FakeNode.start();
  t.after(() => node.close());
  const data = `0x${'ab'.repeat(ANSWER_MB * 512 * 1024)}`;
  node.handle('eth_getLogs', () => [{ address: '0x00000000000000000000000000000000000000ee', data }]);
  const evmux = await startGateway([node.url]);
  t.after(() => evmux.close());

  const response = await fetch(evmux.httpUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: REQUEST });
  const body = await response.text();
  assert.equal(Number(response.headers.get('content-length')), Buffer.byteLength(body));
  assert.equal((JSON.parse(body) as { result: Array<{ data: string }> }).result[0]!.data, data, 'the whole answer, intact');

  // A client that sends its request and then reads nothing.
  const port = new URL(evmux.httpUrl).port;
  const stalled = net.connect(Number(port), '127.0.0.1');
  t.after(() => stalled.destroy());
  await new Promise<void>((resolve) => stalled.once('connect', resolve));
  stalled.pause();
  stalled.write(`POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${REQUEST.length}\r\n\r\n${REQUEST}`);
  await waitUntil('the unread answer cut and counted', async () => (await evmux.metric('evmux_client_rejections_total', { reason: 'answer_unread' })) === 1, 20_000, 200);
  const warning = evmux.logs.find((line) => String(line['msg']).startsWith('HTTP client read no part of its answer for 10 s'));
  assert.ok(warning !== undefined, 'logged');
  assert.deepEqual([warning['client'], warning['session']], ['127.0.0.1', 'ip:127.0.0.1'], 'the client named');
});

test('a client that reads part of a large HTTP answer and hangs up is not counted or logged as one that read none of it', { timeout: 30_000 }, async (t) => {
  const node = await FakeNode.start();
  t.after(() => node.close());
  node.handle('eth_getLogs', () => [{ address: '0x00000000000000000000000000000000000000ee', data: `0x${'ab'.repeat(ANSWER_MB * 512 * 1024)}` }]);
  const evmux = await startGateway([node.url]);
  t.after(() => evmux.close());

  const port = new URL(evmux.httpUrl).port;
  const client = net.connect(Number(port), '127.0.0.1');
  t.after(() => client.destroy());
  await new Promise<void>((resolve) => client.once('connect', resolve));
  const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
  let received = 0;
  client.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (received > 1_000_000) client.destroy();
  });
  client.write(`POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${REQUEST.length}\r\n\r\n${REQUEST}`);
  await closed;
  assert.ok(received < ANSWER_MB * 1024 * 1024, `hung up mid-answer (${received} bytes read)`);
  // A moment for evmux to take in the hang-up (the metrics' own request comes after it anyway).
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal((await evmux.metric('evmux_client_rejections_total', { reason: 'answer_unread' })) ?? 0, 0);
  assert.ok(!evmux.logs.some((line) => String(line['msg']).startsWith('HTTP client read no part')), 'no warning');
});
