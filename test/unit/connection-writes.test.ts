/**
 * How an upstream connection's requests reach the kernel: a lone request in one write at once, a
 * burst of requests made together in one more write at the end of the poll. Writes are counted on
 * the real client socket (net.Socket's _write/_writev, what each write or corked batch ends in),
 * against a real WebSocket server on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createServer, Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { setImmediate as nextCheckPhase } from 'node:timers/promises';
import { WebSocketServer } from 'ws';
import type { ConnectionOptions, UpstreamConnection } from '../../src/upstream/connection.js';
import { testConnection } from '../support/test-connection.js';

type WriteMethod = (this: Socket, ...args: unknown[]) => unknown;

/** Counts the writes of sockets whose peer is `port`, until restored. */
function countWritesTo(port: number): { readonly count: number; restore(): void } {
  const proto = Socket.prototype as unknown as Record<'_write' | '_writev', WriteMethod>;
  const originals = { _write: proto._write, _writev: proto._writev };
  let count = 0;
  for (const name of ['_write', '_writev'] as const) {
    const original = originals[name];
    proto[name] = function (this: Socket, ...args: unknown[]) {
      if (this.remotePort === port) count++;
      return original.apply(this, args);
    };
  }
  return {
    get count() {
      return count;
    },
    restore() {
      Object.assign(proto, originals);
    },
  };
}

/** A connection to the node on 127.0.0.1:`port`, open; closed when the test ends. */
async function openConnection(t: TestContext, port: number, options: Partial<ConnectionOptions> = {}): Promise<UpstreamConnection> {
  const connection = testConnection(t, port, { reconnect: { baseMs: 100, maxMs: 1000 }, ...options });
  const opened = new Promise<void>((resolve) => connection.once('open', resolve));
  connection.start();
  await opened;
  return connection;
}

test('a lone request is written at once; a burst made within the window leaves in one more write after its first', async (t) => {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => server.once('listening', resolve));
  t.after(() => server.close());
  server.on('connection', (ws) => {
    ws.on('message', (data) => {
      const { id } = JSON.parse(String(data)) as { id: number };
      ws.send(`{"jsonrpc":"2.0","id":${id},"result":"0x1"}`);
    });
  });
  const port = (server.address() as AddressInfo).port;
  // Wide enough that the burst below, made by code not yet optimized, counts as one.
  const connection = await openConnection(t, port, { coalesceWindowMs: 20 });

  const writes = countWritesTo(port);
  t.after(() => writes.restore());

  const lone = connection.request('eth_chainId', [], 1000);
  assert.equal(writes.count, 1, 'the lone request was written before send returned');
  await lone;

  await new Promise((resolve) => setTimeout(resolve, 30));
  const before = writes.count;
  const burst = Array.from({ length: 20 }, (_, k) => connection.request('eth_getBalance', [`0x${k}`, 'latest'], 1000));
  assert.equal(writes.count - before, 1, 'only the burst\'s first request left at once');
  await nextCheckPhase();
  assert.equal(writes.count - before, 2, 'the other 19 left together in one write');
  const replies = await Promise.all(burst);
  assert.equal(replies.length, 20);
});

test('a lone request schedules no nextTick of its own: it is written without a callback', async (t) => {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => server.once('listening', resolve));
  t.after(() => server.close());
  server.on('connection', (ws) => ws.on('message', (data) => ws.send(`{"jsonrpc":"2.0","id":${(JSON.parse(String(data)) as { id: number }).id},"result":"0x1"}`)));
  const connection = await openConnection(t, (server.address() as AddressInfo).port);
  await new Promise((resolve) => setTimeout(resolve, 10));

  const original = process.nextTick;
  let ticks = 0;
  process.nextTick = ((...args: Parameters<typeof process.nextTick>) => {
    ticks++;
    original(...args);
  }) as typeof process.nextTick;
  let reply: Promise<unknown>;
  try {
    reply = connection.request('eth_chainId', [], 1000);
  } finally {
    process.nextTick = original;
  }
  assert.equal(ticks, 0, 'a write callback costs Node a nextTick after every write that completes at once');
  await reply;
});

test('a request on a socket the node is closing fails at once, not at its timeout', async (t) => {
  // A node that answers the handshake, sends a close frame, and then neither reads nor ends the
  // connection: the client socket stays CLOSING until ws gives up on it (30 s).
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.once('data', (head) => {
      const key = /sec-websocket-key: *(\S+)/i.exec(String(head))?.[1] ?? '';
      const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      socket.write(Buffer.from([0x88, 0x02, 0x03, 0xe8]));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  const connection = await openConnection(t, (server.address() as AddressInfo).port, { reconnect: { baseMs: 60_000, maxMs: 60_000 } });
  await new Promise((resolve) => setTimeout(resolve, 100)); // the close frame is in

  const started = Date.now();
  await assert.rejects(connection.request('eth_chainId', [], 10_000), /closing socket|closed/);
  assert.ok(Date.now() - started < 1000, `failed after ${Date.now() - started} ms`);
});
