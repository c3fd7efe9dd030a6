import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { writeFrame } from '../../src/upstream/frame-writer.js';

describe('writeFrame', () => {
  it('writes each frame as one text message, as send(frame, { binary: false }) would, and leaves the frame unmasked in place', async (t) => {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    t.after(() => server.close());
    await new Promise((resolve) => server.once('listening', resolve));
    const received: Array<{ data: Buffer; isBinary: boolean }> = [];
    server.on('connection', (peer) => peer.on('message', (data: Buffer, isBinary) => received.push({ data, isBinary })));
    const socket = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/`, { perMessageDeflate: false });
    t.after(() => socket.terminate());
    await new Promise((resolve) => socket.once('open', resolve));

    const small = Buffer.from('{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}');
    const medium = Buffer.alloc(300, 'a');
    const large = Buffer.alloc(70_000, 'b');
    const copies = [small, medium, large].map((frame) => Buffer.from(frame));
    for (const frame of [small, medium, large]) writeFrame(socket, frame);
    const until = Date.now() + 5000;
    while (received.length < 3 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(received.map((message) => message.isBinary), [false, false, false]);
    assert.deepEqual(received.map((message) => message.data), copies, 'each payload whole (lengths of 7, 16 and 64 bits)');
    assert.deepEqual([small, medium, large], copies, 'the frames themselves not masked in place');
  });
});
