/**
 * A node that takes no frame over its limit closes the socket with 1009 (Besu, over 1 MiB; here a
 * ws server with maxPayload): the request that was too large fails as such, not blaming the node,
 * the call beside it fails as closed under it, the socket comes back at once, and frames as large
 * are refused before they are sent, so one client's request does not close the node's sockets again.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { WebSocketServer } from 'ws';
import { testConnection } from '../support/test-connection.js';
import { UpstreamFailure } from '../../src/upstream/errors.js';

const NODE_LIMIT = 64 * 1024;

/** A node taking frames up to NODE_LIMIT, answering every call but eth_hold; it counts its connections and the frames it read. */
async function node(t: TestContext): Promise<{ port: number; connections: number; frames: number }> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: NODE_LIMIT });
  await new Promise<void>((resolve) => server.once('listening', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        for (const client of server.clients) client.terminate();
        server.close(() => resolve());
      }),
  );
  const seen = { port: (server.address() as AddressInfo).port, connections: 0, frames: 0 };
  server.on('connection', (ws) => {
    seen.connections++;
    ws.on('error', () => {});
    ws.on('message', (data) => {
      seen.frames++;
      const { id, method } = JSON.parse(String(data)) as { id: number; method: string };
      // A proxy in front of the node limiting what it passes back closes so too.
      if (method === 'eth_proxyTooBig') ws.close(1009);
      else if (method !== 'eth_hold') ws.send(JSON.stringify({ jsonrpc: '2.0', id, result: '0x1' }));
    });
  });
  return seen;
}

const failure = (call: Promise<unknown>): Promise<{ code: string; blamesNode: boolean } | 'answered'> =>
  call.then(
    () => 'answered' as const,
    (error: unknown) => {
      assert.ok(error instanceof UpstreamFailure, String(error));
      return { code: error.code, blamesNode: error.blamesNode };
    },
  );

test("a request the node closes its socket on (1009) fails as too large, blames nobody, and is not sent to that node again for a while", async (t) => {
  const seen = await node(t);
  const connection = testConnection(t, seen.port, { maxBytesInFlight: 16 * 1024 * 1024 });
  const events: string[] = [];
  connection.on('failed', () => events.push('failed'));
  connection.on('close', (own) => events.push(own ? 'close (own)' : 'close'));
  let opened = new Promise<void>((resolve) => connection.once('open', resolve));
  connection.start();
  await opened;

  const large = ['0x' + 'ab'.repeat(NODE_LIMIT)];
  opened = new Promise<void>((resolve) => connection.once('open', resolve));
  const bystander = failure(connection.request('eth_hold', [], 5000));
  const culprit = failure(connection.request('eth_call', large, 5000));
  assert.deepEqual(await culprit, { code: 'EVMUX_REQUEST_TOO_LARGE', blamesNode: false });
  assert.deepEqual(await bystander, { code: 'EVMUX_SOCKET_CLOSED', blamesNode: false });
  assert.deepEqual(events, ['close (own)'], 'the node is not blamed for it');

  // Back at once (the reconnect backoff here is a minute), and a request as large stays home.
  await opened;
  const frames = seen.frames;
  assert.deepEqual(await failure(connection.request('eth_call', large, 5000)), { code: 'EVMUX_REQUEST_TOO_LARGE', blamesNode: false });
  assert.equal(await failure(connection.request('eth_call', ['0x' + 'ab'.repeat(1000)], 5000)), 'answered', 'a smaller request goes');
  assert.equal(seen.frames, frames + 1, 'only the smaller request reached the node');
  assert.equal(seen.connections, 2, 'the socket was closed once');
});

test('a 1009 with only small requests pending is the node\'s close: no small request is blamed or refused after it', async (t) => {
  const seen = await node(t);
  const connection = testConnection(t, seen.port, { reconnect: { baseMs: 10, maxMs: 10 } });
  let opened = new Promise<void>((resolve) => connection.once('open', resolve));
  connection.start();
  await opened;
  opened = new Promise<void>((resolve) => connection.once('open', resolve));
  const held = failure(connection.request('eth_hold', [], 5000));
  const closer = failure(connection.request('eth_proxyTooBig', [], 5000));
  assert.deepEqual(await closer, { code: 'EVMUX_SOCKET_CLOSED', blamesNode: true });
  assert.deepEqual(await held, { code: 'EVMUX_SOCKET_CLOSED', blamesNode: true });
  await opened;
  assert.equal(await failure(connection.request('eth_chainId', [], 5000)), 'answered', 'small requests still go to the node');
});
