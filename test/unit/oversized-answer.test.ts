/**
 * A node's answer over `maxAnswerBytes` is skipped unread (frame-reader.ts). The call it
 * answers fails as EVMUX_ANSWER_TOO_LARGE, so the router refuses it instead of sending it to the
 * next node; the socket stays open and the call beside it is answered. A message over the limit
 * that answers no call (a notification) closes the socket, failing the calls on it as on any close.
 * Against a real ws server on 127.0.0.1, which sends the answer in one frame (anvil) or in
 * fragments (geth): this is also what holds evmux to the ws internals readFrames hooks into.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { WebSocketServer, type WebSocket } from 'ws';
import type { UpstreamConnection } from '../../src/upstream/connection.js';
import { testConnection } from '../support/test-connection.js';
import { UpstreamFailure } from '../../src/upstream/errors.js';
import { SlowLink } from '../support/slow-link.js';

const LIMIT = 256 * 1024;

type Answer = (ws: WebSocket, id: number) => void;

interface Node {
  port: number;
  /** connections made to it */
  connections: number;
}

/** A node answering eth_getLogs with `big`, and every other call with 0x01 once `big` has gone. */
async function node(t: TestContext, big: Answer): Promise<Node> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => server.once('listening', resolve));
  t.after(() => server.close());
  const state = { port: (server.address() as AddressInfo).port, connections: 0 };
  server.on('connection', (ws) => {
    state.connections++;
    ws.on('message', (data) => {
      const { id, method } = JSON.parse(String(data)) as { id: number; method: string };
      if (method === 'eth_getLogs') setTimeout(() => big(ws, id), 20);
      else setTimeout(() => ws.send(JSON.stringify({ jsonrpc: '2.0', id, result: '0x01' })), 60);
    });
  });
  return state;
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
async function outcomes(t: TestContext, big: Answer): Promise<{ culprit: string; bystander: string; connections: number }> {
  const upstream = await node(t, big);
  const connection = await connect(t, upstream.port);
  const failureCode = (call: Promise<unknown>): Promise<string> =>
    call.then(
      () => 'answered',
      (error: unknown) => (error instanceof UpstreamFailure ? error.code : String(error)),
    );
  const bystander = failureCode(connection.request('eth_call', [{}, 'latest'], 5000));
  const culprit = failureCode(connection.request('eth_getLogs', [{}], 5000));
  const settled = { culprit: await culprit, bystander: await bystander };
  // Whether the socket was made again: give a reconnect the time to show.
  await new Promise((resolve) => setTimeout(resolve, 100));
  return { ...settled, connections: upstream.connections };
}

const SKIPPED = { culprit: 'EVMUX_ANSWER_TOO_LARGE', bystander: 'answered', connections: 1 };
const CLOSED = { culprit: 'EVMUX_SOCKET_CLOSED', bystander: 'EVMUX_SOCKET_CLOSED', connections: 2 };

test('an answer over the limit in one frame fails its own call as too large; the socket stays open and the call beside it is answered', async (t) => {
  assert.deepEqual(await outcomes(t, (ws, id) => ws.send(answerText(id))), SKIPPED);
});

test('an answer over the limit in 1 KB fragments, as geth writes it, is skipped the same way', async (t) => {
  const fragmented: Answer = (ws, id) => {
    const text = Buffer.from(answerText(id));
    for (let offset = 0; offset < text.length; offset += 1024) {
      ws.send(text.subarray(offset, offset + 1024), { binary: false, fin: offset + 1024 >= text.length });
    }
  };
  assert.deepEqual(await outcomes(t, fragmented), SKIPPED);
});

test('the id is read whatever the key order, first or last (Nethermind); a message over the limit with no id closes the socket', async (t) => {
  assert.deepEqual(await outcomes(t, (ws, id) => ws.send(answerText(id, `"id":${id},"jsonrpc":"2.0"`))), SKIPPED);
  const last: Answer = (ws, id) => ws.send(`{"jsonrpc":"2.0","result":[{"data":"0x${'ab'.repeat(LIMIT)}","id":1}],"id":${id}}`);
  assert.deepEqual(await outcomes(t, last), SKIPPED);
  const anonymous = await outcomes(t, (ws) => ws.send(answerText(0, `"jsonrpc":"2.0","method":"eth_subscription","params":{"result":[1]}`)));
  assert.deepEqual(anonymous, CLOSED);
});

test('behind a slow link, an answer whose id comes first fails its call as soon as its first bytes are in, not after the rest', async (t) => {
  const upstream = await node(t, (ws, id) => ws.send(answerText(id).repeat(4)));
  // ~1 MB at 100 KB/s: ten seconds to cross, against a call that may take two.
  const link = await SlowLink.start(upstream.port, { down: 100_000 });
  t.after(() => link.close());
  const connection = await connect(t, link.port);
  const started = Date.now();
  const outcome = await connection.request('eth_getLogs', [{}], 2000).then(
    () => 'answered',
    (error: unknown) => (error instanceof UpstreamFailure ? error.code : String(error)),
  );
  assert.equal(outcome, 'EVMUX_ANSWER_TOO_LARGE');
  assert.ok(Date.now() - started < 1000, `failed after ${Date.now() - started} ms`);
});
