/**
 * A node's answer over `maxAnswerBytes` closes the socket (ws cannot skip a message unread). The call
 * it answers fails as EVMUX_ANSWER_TOO_LARGE, so the router refuses it instead of sending it to the
 * next node; the other calls pending on the socket fail as on any close and are retried. Against a
 * real ws server on 127.0.0.1, which sends the answer in one frame (anvil) or in 4 KB fragments
 * (geth): this is also what holds evmux to the ws internals oversized-message.ts reads.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { WebSocketServer, type WebSocket } from 'ws';
import type { UpstreamConnection } from '../../src/upstream/connection.js';
import { testConnection } from '../support/test-connection.js';
import { UpstreamFailure } from '../../src/upstream/errors.js';

const LIMIT = 256 * 1024;

type Answer = (ws: WebSocket, id: number) => void;

/** A node answering eth_getLogs with `big`, holding every other call unanswered. */
async function node(t: TestContext, big: Answer): Promise<number> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => server.once('listening', resolve));
  t.after(() => server.close());
  server.on('connection', (ws) => {
    ws.on('message', (data) => {
      const { id, method } = JSON.parse(String(data)) as { id: number; method: string };
      if (method === 'eth_getLogs') setTimeout(() => big(ws, id), 20);
    });
  });
  return (server.address() as AddressInfo).port;
}

async function connect(t: TestContext, port: number): Promise<UpstreamConnection> {
  const connection = testConnection(t, port, { maxAnswerBytes: LIMIT });
  const opened = new Promise<void>((resolve) => connection.once('open', resolve));
  connection.start();
  await opened;
  return connection;
}

const answerText = (id: number, leading = `"jsonrpc":"2.0","id":${id}`): string => `{${leading},"result":"0x${'ab'.repeat(LIMIT)}"}`;

/** The failure codes of a call that must fail, and of one held unanswered beside it. */
async function outcomes(t: TestContext, big: Answer): Promise<{ culprit: string; bystander: string }> {
  const connection = await connect(t, await node(t, big));
  const failureCode = (call: Promise<unknown>): Promise<string> =>
    call.then(
      () => 'answered',
      (error: unknown) => (error instanceof UpstreamFailure ? error.code : String(error)),
    );
  const bystander = failureCode(connection.request('eth_call', [{}, 'latest'], 5000));
  const culprit = failureCode(connection.request('eth_getLogs', [{}], 5000));
  return { culprit: await culprit, bystander: await bystander };
}

test('an answer over the limit in one frame fails its own call as too large, and the call beside it as a closed socket', async (t) => {
  assert.deepEqual(await outcomes(t, (ws, id) => ws.send(answerText(id))), { culprit: 'EVMUX_ANSWER_TOO_LARGE', bystander: 'EVMUX_SOCKET_CLOSED' });
});

test('an answer over the limit in 4 KB fragments, as geth writes it, is told apart the same way', async (t) => {
  const fragmented: Answer = (ws, id) => {
    const text = Buffer.from(answerText(id));
    for (let offset = 0; offset < text.length; offset += 4096) {
      ws.send(text.subarray(offset, offset + 4096), { binary: false, fin: offset + 4096 >= text.length });
    }
  };
  assert.deepEqual(await outcomes(t, fragmented), { culprit: 'EVMUX_ANSWER_TOO_LARGE', bystander: 'EVMUX_SOCKET_CLOSED' });
});

test('the id is read whatever the key order; a message with no leading id fails every call as a closed socket', async (t) => {
  const reordered = await outcomes(t, (ws, id) => ws.send(answerText(id, `"id":${id},"jsonrpc":"2.0"`)));
  assert.deepEqual(reordered, { culprit: 'EVMUX_ANSWER_TOO_LARGE', bystander: 'EVMUX_SOCKET_CLOSED' });
  const anonymous = await outcomes(t, (ws) => ws.send(answerText(0, `"jsonrpc":"2.0","method":"eth_subscription","params":{"result":[1]}`)));
  assert.deepEqual(anonymous, { culprit: 'EVMUX_SOCKET_CLOSED', bystander: 'EVMUX_SOCKET_CLOSED' });
});
