/**
 * A node stuck in a message that never ends, a byte at a time, holds its pong and every answer
 * behind it for good. Counted as a message still arriving, it was never cut, and every call to the
 * node failed; it must be cut as a node gone silent. One that sends a large message at a link's
 * pace is not. Against a ws server on 127.0.0.1 writing raw frames into its socket.
 */
import assert from 'node:assert/strict';
import type { AddressInfo, Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { WebSocketServer } from 'ws';
import { testConnection } from '../support/test-connection.js';

/** A node that, once connected, begins a 100 MB text frame and sends `bytesPerTick` of it every 100 ms. */
async function stuckNode(t: TestContext, bytesPerTick: number): Promise<number> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => server.once('listening', resolve));
  const timers: NodeJS.Timeout[] = [];
  t.after(() => {
    for (const timer of timers) clearInterval(timer);
    for (const client of server.clients) client.terminate();
    server.close();
  });
  server.on('connection', (ws) => {
    const socket = (ws as unknown as { _socket: Socket })._socket;
    socket.write(Buffer.from([0x81, 127, 0, 0, 0, 0, 0x06, 0x00, 0x00, 0x00]));
    socket.write('{"jsonrpc":"2.0","method":"eth_subscription","params":{"result":"');
    timers.push(setInterval(() => socket.write('a'.repeat(bytesPerTick)), 100));
  });
  return (server.address() as AddressInfo).port;
}

/** Whether the connection was cut within `withinMs`, and how long it stayed open (at most about `withinMs`). */
async function openFor(t: TestContext, port: number, withinMs: number): Promise<{ cut: boolean; lasted: number }> {
  const connection = testConnection(t, port, { heartbeat: { intervalMs: 200, timeoutMs: 300 } });
  const opened = new Promise<void>((resolve) => connection.once('open', resolve));
  connection.start();
  await opened;
  const started = Date.now();
  const cut = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), withinMs);
    connection.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  return { cut, lasted: Date.now() - started };
}

test('a node stuck in an endless message, a byte at a time, is cut as one gone silent', async (t) => {
  const { cut, lasted } = await openFor(t, await stuckNode(t, 1), 3000);
  assert.ok(cut && lasted < 1500, `cut: ${cut}, after ${lasted} ms (heartbeat 200 + 300 ms)`);
});

test('a node sending a large message at 100 KB/s is not cut while it arrives', async (t) => {
  // Asked, not timed: a timer due at 2000 ms can read 1999 on Date.now()'s clock.
  const { cut, lasted } = await openFor(t, await stuckNode(t, 10_000), 2000);
  assert.equal(cut, false, `cut after ${lasted} ms`);
});
