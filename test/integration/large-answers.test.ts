/**
 * Answers larger than the send buffer cap (`limits.maxSendBufferBytes`): a wide eth_getLogs or a
 * batch of blocks can be tens of MB. A client that reads gets such an answer whole, and the heads
 * published while it reads arrive after it, none skipped. A client that does not read is still cut
 * off (1013) once more than the cap waits behind the large answer. The fake node serves the answer:
 * anvil cannot be made to produce tens of MB of logs in a test's time.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { WebSocket } from 'ws';
import { FakeNode } from '../support/fake-node.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { sumSamples } from '../support/prom-text.js';
import { sleep, waitUntil } from '../support/stream-recorder.js';

const CAP = 1024 * 1024;
const ANSWER_MB = 16;

interface Client {
  ws: WebSocket;
  socket: Socket;
  heads: number[];
  /** ids of the answers received, with their sizes */
  answers: Map<number, number>;
  closeCode: number | undefined;
}

async function setup(t: TestContext): Promise<{ node: FakeNode; evmux: TestGateway; client: Client }> {
  const node = await FakeNode.start();
  t.after(() => node.close());
  const data = `0x${'ab'.repeat(ANSWER_MB * 512 * 1024)}`;
  node.handle('eth_getLogs', () => [{ address: '0x00000000000000000000000000000000000000ee', data }]);
  const evmux = await startGateway([node.url], { limits: { maxSendBufferBytes: CAP } });
  t.after(() => evmux.close());
  const ws = new WebSocket(evmux.wsUrl, { maxPayload: 64 * 1024 * 1024 });
  t.after(() => ws.terminate());
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  const client: Client = { ws, socket: (ws as unknown as { _socket: Socket })._socket, heads: [], answers: new Map(), closeCode: undefined };
  ws.on('message', (frame: Buffer) => {
    const message = JSON.parse(frame.toString()) as { id?: number; method?: string; params?: { result: { number: string } } };
    if (message.method === 'eth_subscription') client.heads.push(Number(message.params!.result.number));
    else if (typeof message.id === 'number') client.answers.set(message.id, frame.length);
  });
  ws.on('close', (code) => (client.closeCode = code));
  ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_subscribe', params: ['newHeads'] }));
  await waitUntil('the greeting head', () => client.heads.length === 1, 5000);
  return { node, evmux, client };
}

const getLogs = (id: number): string => JSON.stringify({ jsonrpc: '2.0', id, method: 'eth_getLogs', params: [{ fromBlock: '0x0', toBlock: 'latest' }] });
const slowConsumers = async (evmux: TestGateway): Promise<number> =>
  sumSamples((await evmux.get('/metrics')).body, 'evmux_client_disconnects_total', { reason: 'slow_consumer' });

await test('an answer 16 times the cap reaches a client that reads it, and the heads published meanwhile follow it, none skipped', async (t) => {
  const { node, evmux, client } = await setup(t);
  // The client holds off reading while the answer and three heads are queued for it.
  client.socket.pause();
  client.ws.send(getLogs(2));
  await sleep(300);
  for (let i = 0; i < 3; i++) {
    node.advance(1);
    await sleep(50);
  }
  client.socket.resume();
  await waitUntil('the answer and every head', () => client.answers.has(2) && client.heads.length === 4, 10_000);
  assert.ok(client.answers.get(2)! > ANSWER_MB * 1024 * 1024, `the whole answer arrived (${client.answers.get(2)} bytes)`);
  node.advance(1);
  await waitUntil('the next head', () => client.heads.length === 5, 5000);
  assert.deepEqual(client.heads, [100, 101, 102, 103, 104], 'every head once, in order');
  assert.equal(client.closeCode, undefined, 'still connected');
  assert.equal(await slowConsumers(evmux), 0);
});

await test('a client that does not read is cut off with 1013 once more than the cap waits behind a large answer', async (t) => {
  const { evmux, client } = await setup(t);
  client.socket.pause();
  client.ws.send(getLogs(2));
  await sleep(300);
  assert.equal(await slowConsumers(evmux), 0, 'one unread answer over the cap is allowed');
  client.ws.send(getLogs(3));
  await waitUntil('the disconnect', async () => (await slowConsumers(evmux)) === 1, 5000);
  client.socket.resume();
  await waitUntil('the close at the client', () => client.closeCode !== undefined, 10_000);
  assert.equal(client.closeCode, 1013);
  const line = evmux.logs.find((entry) => entry['msg'] === 'disconnecting slow consumer');
  assert.equal(line?.['cap'], CAP);
  assert.ok(Number(line?.['largestFrame']) > ANSWER_MB * 1024 * 1024, 'the log names the large frame it allowed');
});

test('a client that closes with 1009 for an answer over its own limit is counted as a client disconnect, not a limit of evmux\'s', async (t) => {
  const { evmux } = await setup(t);
  // ws closes with 1009 itself when a message passes its maxPayload, as ethers and viem on ws do.
  const small = new WebSocket(evmux.wsUrl, { maxPayload: CAP });
  t.after(() => small.terminate());
  small.on('error', () => {});
  await new Promise((resolve, reject) => small.once('open', resolve).once('error', reject));
  const closed = new Promise<void>((resolve) => small.once('close', () => resolve()));
  const disconnects = async (reason: string): Promise<number> => sumSamples((await evmux.get('/metrics')).body, 'evmux_client_disconnects_total', { reason });
  small.send(getLogs(2));
  // The client's own close event says 1006; evmux got its 1009.
  await closed;
  await waitUntil('the close counted', async () => (await disconnects('client')) === 1, 5000);
  assert.equal(await disconnects('limit'), 0);
});
