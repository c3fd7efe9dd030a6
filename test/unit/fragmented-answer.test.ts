/**
 * geth writes a message in frames of its write buffer (gorilla/websocket, 1 KB): a 20 MB answer
 * arrives as some 20,000 fragments. ws 8.23 caps a client's fragments per message at 16,384 by
 * default and closes the socket past it, so an answer well under limits.maxAnswerBytes failed
 * every node it was tried on. Against a real ws server on 127.0.0.1 writing 1 KB fragments.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { WebSocketServer } from 'ws';
import { testConnection } from '../support/test-connection.js';

const FRAME_BYTES = 1024;

test('an answer in 1 KB fragments, as geth writes it, arrives whole at 20 MB', { timeout: 30_000 }, async (t) => {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => server.once('listening', resolve));
  t.after(() => server.close());
  const data = `0x${'ab'.repeat(10 * 1024 * 1024)}`;
  server.on('connection', (ws) => {
    ws.on('message', (raw) => {
      const { id } = JSON.parse(String(raw)) as { id: number };
      const text = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id, result: [{ data }] }));
      for (let offset = 0; offset < text.length; offset += FRAME_BYTES) {
        ws.send(text.subarray(offset, offset + FRAME_BYTES), { binary: false, fin: offset + FRAME_BYTES >= text.length });
      }
    });
  });
  const connection = testConnection(t, (server.address() as AddressInfo).port, { maxAnswerBytes: 64 * 1024 * 1024 });
  const opened = new Promise<void>((resolve) => connection.once('open', resolve));
  connection.start();
  await opened;
  const reply = await connection.request('eth_getLogs', [{}], 20_000);
  assert.equal(reply.error, undefined);
  const text = reply.tail.toString();
  assert.equal(text.length > 20 * 1024 * 1024, true, `the whole answer: ${text.length} bytes`);
  assert.ok(text.includes(data));
});
