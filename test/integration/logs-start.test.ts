/**
 * Where a new logs subscription starts when its node stumbles right after the reply: the stream is
 * anchored in its topic's queue after the reply went out, by asking the node for its head. A block
 * mined in between must not be taken for the start block (whose logs are withheld as from before
 * the subscription): when the node's logs stream was being made again at that moment, or the
 * subscription moved to another node, that block's logs were never sent. Fake nodes, slowed down
 * so that the block comes in that moment every time.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { FakeNode } from '../support/fake-node.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { sleep, StreamClient, waitUntil } from '../support/stream-recorder.js';

const ADDRESS = '0x00000000000000000000000000000000000000b7';
/** Answers this slow leave the anchor request in flight as the block comes. */
const SLOW_MS = 100;

async function setup(t: TestContext, count: number): Promise<{ nodes: FakeNode[]; evmux: TestGateway; client: StreamClient }> {
  const nodes = await Promise.all(Array.from({ length: count }, () => FakeNode.start({ seed: 'logs-start', startHeight: 100 })));
  t.after(() => Promise.all(nodes.map((node) => node.close())));
  const evmux = await startGateway(nodes.map((node) => node.url));
  t.after(() => evmux.close());
  await waitUntil('every node usable', async () => (JSON.parse((await evmux.get('/readyz')).body) as { usableUpstreams: number }).usableUpstreams === count, 10_000);
  const client = await StreamClient.open(evmux.wsUrl, 'client');
  t.after(() => client.close());
  return { nodes, evmux, client };
}

/** Mine `count` blocks with one matching log each on every node (they hold one chain). */
function mine(nodes: FakeNode[], count: number): void {
  for (let i = 0; i < count; i++) {
    for (const node of nodes) node.addLog({ address: ADDRESS, data: '0x01' });
    for (const node of nodes) node.advance(1);
  }
}

/** Every block after `from` up to the head has its log delivered to `id`, once. */
async function assertEveryBlockAfter(client: StreamClient, id: string, node: FakeNode, from: bigint): Promise<void> {
  const head = node.head.number;
  await waitUntil(`the log of block ${head}`, () => client.logs(id).some((log) => log.blockNumber === head), 5000);
  await sleep(200);
  const got = client.logs(id).map((log) => log.blockNumber);
  const want: bigint[] = [];
  for (let n = from + 1n; n <= head; n++) want.push(n);
  assert.deepEqual(got, want, `subscribed at ${from}: the logs of every later block, once`);
}

test("a block mined as the node's logs stream is made again, right after the subscribe reply: its logs are sent", async (t) => {
  const { nodes, client } = await setup(t, 1);
  const node = nodes[0]!;
  node.latencyMs = SLOW_MS;
  const id = await client.subscribe(['logs', { address: ADDRESS }]);
  const subscribedAt = node.head.number;
  // The socket that carries subscriptions drops (a call socket stands in), and a block comes.
  node.dropSockets((socket) => socket.calls === 0);
  mine(nodes, 1);
  await sleep(4 * SLOW_MS);
  node.latencyMs = 0;
  mine(nodes, 2);
  await assertEveryBlockAfter(client, id, node, subscribedAt);
});

test('a block mined as the node dies, right after the subscribe reply: its logs are sent from the next node', async (t) => {
  const { nodes, client } = await setup(t, 2);
  for (const node of nodes) node.latencyMs = SLOW_MS;
  const id = await client.subscribe(['logs', { address: ADDRESS }]);
  const subscribedAt = nodes[0]!.head.number;
  const holder = nodes.find((node) => node.stats.liveSubscriptions > 0);
  assert.ok(holder !== undefined, 'one node holds the logs subscription');
  holder.acceptConnections = false;
  holder.dropConnections();
  mine(nodes, 1);
  await sleep(4 * SLOW_MS);
  for (const node of nodes) node.latencyMs = 0;
  mine(nodes, 2);
  const survivor = nodes.find((node) => node !== holder)!;
  await assertEveryBlockAfter(client, id, survivor, subscribedAt);
  holder.acceptConnections = true;
});

/**
 * A subscription made in a batch is answered with the batch, once its slowest call is done; blocks
 * mined meanwhile are after the head the batch reported, so their logs are the subscription's.
 * `meanwhile` runs while the batch waits.
 */
async function subscribeInSlowBatch(client: StreamClient, node: FakeNode, meanwhile: () => Promise<void>): Promise<{ id: string; reportedHead: bigint }> {
  node.handle('eth_getCode', async () => {
    await sleep(1200);
    return '0x';
  });
  const replies = client.batch(
    [
      { method: 'eth_subscribe', params: ['logs', { address: ADDRESS }] },
      { method: 'eth_blockNumber', params: [] },
      { method: 'eth_getCode', params: [ADDRESS, 'latest'] },
    ],
    10_000,
  );
  await sleep(300);
  await meanwhile();
  const [subscribed, blockNumber] = await replies;
  node.unhandle('eth_getCode');
  assert.equal(typeof subscribed!['result'], 'string', JSON.stringify(subscribed));
  return { id: subscribed!['result'] as string, reportedHead: BigInt(blockNumber!['result'] as string) };
}

/** `count` blocks with a matching log, 150 ms apart. */
async function mineSlowly(nodes: FakeNode[], count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    mine(nodes, 1);
    await sleep(150);
  }
}

test('a logs subscription in a batch with a slow call: the logs of blocks mined before the batch is answered are sent', async (t) => {
  const { nodes, client } = await setup(t, 1);
  const node = nodes[0]!;
  const { id, reportedHead } = await subscribeInSlowBatch(client, node, () => mineSlowly(nodes, 3));
  assert.ok(node.head.number >= reportedHead + 3n, 'blocks were mined while the batch waited');
  mine(nodes, 1);
  await assertEveryBlockAfter(client, id, node, reportedHead);
});

test('a logs subscription in a batch with a slow call, joining a stream under way: the logs sent meanwhile are sent to it too', async (t) => {
  const { nodes, evmux, client } = await setup(t, 1);
  const node = nodes[0]!;
  const first = await StreamClient.open(evmux.wsUrl, 'first');
  t.after(() => first.close());
  const firstId = await first.subscribe(['logs', { address: ADDRESS }]);
  const firstFrom = node.head.number;
  mine(nodes, 1);
  await waitUntil('the stream under way', () => first.logs(firstId).length === 1, 5000);
  const { id, reportedHead } = await subscribeInSlowBatch(client, node, () => mineSlowly(nodes, 3));
  mine(nodes, 1);
  await assertEveryBlockAfter(client, id, node, reportedHead);
  await assertEveryBlockAfter(first, firstId, node, firstFrom);
});

test('two subscriptions of one new filter answered at different heads: each gets the logs after its own head, no more, no fewer', async (t) => {
  const { nodes, evmux, client } = await setup(t, 1);
  const node = nodes[0]!;
  const other = await StreamClient.open(evmux.wsUrl, 'other');
  t.after(() => other.close());
  // The batch waits on its slow call while blocks come and the other client subscribes alone.
  let alone: Array<Record<string, unknown>> = [];
  const batched = await subscribeInSlowBatch(client, node, async () => {
    mine(nodes, 2);
    await sleep(200);
    alone = await other.batch([
      { method: 'eth_subscribe', params: ['logs', { address: ADDRESS }] },
      { method: 'eth_blockNumber', params: [] },
    ]);
    mine(nodes, 2);
  });
  mine(nodes, 2);
  await assertEveryBlockAfter(client, batched.id, node, batched.reportedHead);
  await assertEveryBlockAfter(other, alone[0]!['result'] as string, node, BigInt(alone[1]!['result'] as string));
});
