/**
 * A front that answers the WebSocket handshake a byte at a time (a stuck proxy) never goes quiet
 * long enough for ws's handshakeTimeout, which is an idle timeout: the connect attempt is given up
 * after the handshake deadline all the same, said why, and tried again.
 */
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { test } from 'node:test';
import { testConnection } from '../support/test-connection.js';

test('a handshake answered a byte at a time is given up at the handshake deadline, and tried again', async (t) => {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('data', () => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nX-Slow: ');
      const trickle = setInterval(() => socket.write('a'), 100);
      socket.once('close', () => clearInterval(trickle));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  const connection = testConnection(t, (server.address() as AddressInfo).port, { heartbeat: { intervalMs: 400, timeoutMs: 400 }, reconnect: { baseMs: 50, maxMs: 50 } });
  const failures: string[] = [];
  connection.on('failed', (reason) => failures.push(reason));
  const started = Date.now();
  connection.start();
  while (failures.length === 0 && Date.now() - started < 5000) await new Promise((resolve) => setTimeout(resolve, 20));
  const after = Date.now() - started;
  assert.match(failures[0] ?? 'none', /handshake not completed within 800 ms/);
  assert.ok(after < 2000, `given up after ${after} ms`);
  while (sockets.size < 2 && Date.now() - started < 5000) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.ok(sockets.size >= 2, 'tried again');
});
