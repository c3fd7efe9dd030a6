/**
 * `limits.requestBodyTimeoutMs`: an HTTP body that trickles in (fast enough for uWebSockets.js,
 * which only closes a connection that sends under 16 KB in 10 s) is refused with 408 and a
 * JSON-RPC error once its deadline passes, and the connection is closed. A body sent in pieces within the deadline is answered as
 * usual, and its keep-alive connection stays usable after the deadline would have passed.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { test, type TestContext } from 'node:test';
import { FakeNode } from '../support/fake-node.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { sumSamples } from '../support/prom-text.js';
import { sleep, waitUntil } from '../support/stream-recorder.js';

const DEADLINE_MS = 600;
const BODY = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'eth_chainId', params: [] });

interface RawClient {
  socket: Socket;
  received: () => string;
  closed: () => boolean;
}

async function rawClient(t: TestContext, evmux: TestGateway): Promise<RawClient> {
  const socket = connect({ host: '127.0.0.1', port: evmux.gateway.port });
  t.after(() => socket.destroy());
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let text = '';
  let closed = false;
  socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
  socket.on('close', () => (closed = true));
  socket.on('error', () => undefined);
  return { socket, received: () => text, closed: () => closed };
}

const head = (length: number): string => `POST / HTTP/1.1\r\nHost: evmux\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;

async function setup(t: TestContext): Promise<TestGateway> {
  const node = await FakeNode.start();
  t.after(() => node.close());
  const evmux = await startGateway([node.url], { limits: { requestBodyTimeoutMs: DEADLINE_MS } });
  t.after(() => evmux.close());
  return evmux;
}

test('a body that trickles in past limits.requestBodyTimeoutMs gets 408 with a JSON-RPC error naming the limit, and its connection is closed', async (t) => {
  const evmux = await setup(t);
  const client = await rawClient(t, evmux);
  const started = performance.now();
  // A call padded with spaces to 1 MB (still valid JSON), sent at 40 KB/s: fast enough that
  // uWebSockets.js's own floor (16 KB per 10 s) never cuts it, and never done in the deadline.
  const padded = BODY + ' '.repeat(1_000_000 - BODY.length);
  const piece = 4096;
  client.socket.write(head(padded.length) + padded.slice(0, piece));
  let sent = piece;
  const trickle = setInterval(() => {
    if (sent + piece < padded.length && !client.closed()) client.socket.write(padded.slice(sent, (sent += piece)));
  }, 100);
  t.after(() => clearInterval(trickle));
  await waitUntil('the connection closed by evmux', () => client.closed(), 5000);
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= DEADLINE_MS && elapsed < DEADLINE_MS + 1000, `closed ${Math.round(elapsed)} ms after the body began`);
  const [status, body] = [client.received().split('\r\n')[0], client.received().split('\r\n\r\n')[1]];
  assert.equal(status, 'HTTP/1.1 408 Request Timeout');
  // A browser dapp can read why (CORS), as it can every other answer.
  assert.match(client.received().split('\r\n\r\n')[0]!, /\r\naccess-control-allow-origin: \*(\r\n|$)/i);
  assert.deepEqual(JSON.parse(body!), {
    jsonrpc: '2.0',
    id: null,
    error: { code: -32600, message: `request body not received in full within ${DEADLINE_MS} ms (limits.requestBodyTimeoutMs)` },
  });
  assert.equal(sumSamples((await evmux.get('/metrics')).body, 'evmux_client_rejections_total', { reason: 'body_timeout' }), 1);
  const warning = evmux.logs.find((line) => line['msg'] === 'HTTP request body too slow: answered 408 and closed (limits.requestBodyTimeoutMs)');
  assert.ok(warning !== undefined, 'logged');
  assert.deepEqual([warning['client'], warning['session']], ['127.0.0.1', 'ip:127.0.0.1'], 'the client named');
});

test('a body sent in pieces within the deadline is answered, and its keep-alive connection outlives the deadline', async (t) => {
  const evmux = await setup(t);
  const client = await rawClient(t, evmux);
  client.socket.write(head(BODY.length) + BODY.slice(0, 20));
  await sleep(DEADLINE_MS / 3);
  client.socket.write(BODY.slice(20));
  await waitUntil('the first answer', () => client.received().includes('"id":7'), 5000);
  assert.match(client.received(), /^HTTP\/1\.1 200 OK\r\n/);
  await sleep(DEADLINE_MS + 300);
  assert.equal(client.closed(), false, 'no deadline left behind for the answered body');
  client.socket.write(head(BODY.length) + BODY.replace('"id":7', '"id":8'));
  await waitUntil('the second answer on the same connection', () => client.received().includes('"id":8'), 5000);
  assert.equal(sumSamples((await evmux.get('/metrics')).body, 'evmux_client_rejections_total', { reason: 'body_timeout' }), 0);
});
