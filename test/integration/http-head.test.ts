/**
 * HEAD on the client port: GET's status and headers, its body's length, no body, and a response
 * that ends there. uWS 20.30 took a HEAD answer ended with a length for unfinished: the next
 * request on the connection was taken for pipelining and the connection cut, and one left alone
 * was never closed (uws-adapter.ts endHead).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { FakeNode } from '../support/fake-node.js';
import { startGateway } from '../support/gateway.js';
import { waitUntil } from '../support/stream-recorder.js';

const CALL = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] });
const POST = `POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${CALL.length}\r\n\r\n${CALL}`;

/** A raw HTTP/1.1 connection: every byte it receives, and whether the server closed it. */
async function rawConnection(port: number): Promise<{ socket: net.Socket; received: () => string; closed: () => boolean }> {
  const socket = net.connect(port, '127.0.0.1');
  let text = '';
  let closed = false;
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  socket.on('close', () => (closed = true));
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  return { socket, received: () => text, closed: () => closed };
}

test('a HEAD answer ends at its headers: the connection takes the next request, and closes when asked to', { timeout: 30_000 }, async (t) => {
  const node = await FakeNode.start();
  t.after(() => node.close());
  const evmux = await startGateway([node.url]);
  t.after(() => evmux.close());
  const port = Number(new URL(evmux.httpUrl).port);
  const getLength = Buffer.byteLength((await evmux.get('/healthz')).body);

  const kept = await rawConnection(port);
  t.after(() => kept.socket.destroy());
  kept.socket.write('HEAD /healthz HTTP/1.1\r\nhost: x\r\n\r\n');
  await waitUntil('the HEAD answer', () => kept.received().includes('\r\n\r\n'), 5000, 20);
  const head = kept.received();
  assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
  const lengths = [...head.matchAll(/^content-length: *(\d+)\r$/gim)].map((m) => Number(m[1]));
  assert.deepEqual(lengths, [getLength], "one Content-Length, GET's");
  assert.ok(head.endsWith('\r\n\r\n'), 'no body');

  kept.socket.write(POST);
  await waitUntil('the POST after the HEAD answered', () => kept.received().includes('"result":"0x'), 5000, 20);
  assert.equal(kept.closed(), false, 'the connection stays open for more');

  const closing = await rawConnection(port);
  t.after(() => closing.socket.destroy());
  closing.socket.write('HEAD /readyz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
  await waitUntil('the server closing the connection after a HEAD asked to close it', () => closing.closed(), 5000, 20);
  assert.match(closing.received(), /^HTTP\/1\.1 200 OK\r\n/);
});
