/**
 * An eth_subscribe whose node fails while the subscribe is on its way: the client gets its
 * subscription from the node that serves it next, not -32050, whether the node died or only the
 * socket that carries its subscriptions dropped (a call socket stands in at once). Fake nodes,
 * slowed down so that the failure comes while the node's answer is pending.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { FakeNode } from '../support/fake-node.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { sleep, StreamClient, waitUntil } from '../support/stream-recorder.js';

const SLOW_MS = 300;

async function setup(t: TestContext, count: number): Promise<{ nodes: FakeNode[]; evmux: TestGateway }> {
  const nodes = await Promise.all(Array.from({ length: count }, () => FakeNode.start({ seed: 'subscribe-failure', startHeight: 100 })));
  t.after(() => Promise.all(nodes.map((node) => node.close())));
  const evmux = await startGateway(nodes.map((node) => node.url));
  t.after(() => evmux.close());
  await waitUntil('every node usable', async () => (JSON.parse((await evmux.get('/readyz')).body) as { usableUpstreams: number }).usableUpstreams === count, 10_000);
  return { nodes, evmux };
}

const subscribes = (node: FakeNode): number => node.stats.requests.get('eth_subscribe') ?? 0;

const address = (i: number): `0x${string}` => `0x${(0xc00 + i).toString(16).padStart(40, '0')}`;

/** Five clients subscribe at once; `fail` runs while their subscribes wait for the node's answer. */
async function subscribeThrough(evmux: TestGateway, fail: () => void, t: TestContext): Promise<Array<{ client: StreamClient; id: string | undefined; error?: string }>> {
  const clients = await Promise.all(Array.from({ length: 5 }, (_, i) => StreamClient.open(evmux.wsUrl, `c${i}`)));
  t.after(() => clients.forEach((client) => client.close()));
  const replies = clients.map((client, i) => client.subscribe(['logs', { address: address(i) }]).then(
    (id) => ({ client, id }),
    (error: unknown) => ({ client, id: undefined, error: (error as Error).message }),
  ));
  await sleep(SLOW_MS / 3);
  fail();
  return Promise.all(replies);
}

function assertSubscribed(results: Array<{ id: string | undefined; error?: string }>): void {
  assert.deepEqual(results.filter(({ id }) => id === undefined).map(({ error }) => error), [], 'every subscribe answered with an id');
}

test('the node dies under pending subscribes: they are made on the next node', async (t) => {
  const { nodes, evmux } = await setup(t, 2);
  for (const node of nodes) node.latencyMs = SLOW_MS;
  const before = nodes.map(subscribes);
  let holder: FakeNode | undefined;
  const results = await subscribeThrough(evmux, () => {
    holder = nodes.find((node, i) => subscribes(node) > before[i]!);
    assert.ok(holder !== undefined, 'a node got the subscribes');
    holder.acceptConnections = false;
    holder.dropConnections();
  }, t);
  assertSubscribed(results);
  for (const node of nodes) node.latencyMs = 0;
  const survivor = nodes.find((node) => node !== holder)!;
  assert.ok(survivor.stats.liveSubscriptions > 0, 'the subscriptions live on the other node');
});

test("the node's subscription socket drops under pending subscribes: they are made on the socket that stands in", async (t) => {
  const { nodes, evmux } = await setup(t, 1);
  const node = nodes[0]!;
  node.latencyMs = SLOW_MS;
  const results = await subscribeThrough(evmux, () => node.dropSockets((socket) => socket.calls === 0), t);
  assertSubscribed(results);
  node.latencyMs = 0;
  // They stream: the next block's log reaches each client.
  for (let i = 0; i < results.length; i++) node.addLog({ address: address(i), data: '0x01' });
  node.advance(1);
  for (const { client, id } of results) await waitUntil(`${client.label}'s log`, () => client.logs(id!).length === 1, 5000);
});

test('every node closes during the head read before a logs subscription is answered: the answer waits for them, and the next block\'s log comes', async (t) => {
  // The head read anchors the stream at the head the client is answered at. Failed with the
  // sockets, it was made again after the reply, once the nodes were back: past the block mined
  // meanwhile, whose log was never sent.
  const { nodes, evmux } = await setup(t, 2);
  const client = await StreamClient.open(evmux.wsUrl, 'client');
  t.after(() => client.close());
  const count = (method: string): number => nodes.reduce((sum, node) => sum + (node.stats.requests.get(method) ?? 0), 0);
  const [subscribesBefore, readsBefore] = [count('eth_subscribe'), count('eth_getBlockByNumber')];
  for (const node of nodes) node.latencyMs = SLOW_MS;
  const reply = client.subscribe(['logs', { address: address(0) }]);
  await waitUntil('the head read after the upstream subscribe', () => count('eth_subscribe') > subscribesBefore && count('eth_getBlockByNumber') > readsBefore, 5000, 2);
  await sleep(20);
  for (const node of nodes) {
    node.latencyMs = 0;
    node.dropConnections();
  }
  const id = await reply;
  const answeredAt = nodes[0]!.head.number;
  for (let i = 0; i < 3; i++) {
    for (const node of nodes) node.addLog({ address: address(0), data: '0x01' });
    for (const node of nodes) node.advance(1);
    await sleep(50);
  }
  await waitUntil('three logs', () => client.logs(id).length >= 3, 5000);
  assert.deepEqual(client.logs(id).map((log) => BigInt(log.blockNumber)), [answeredAt + 1n, answeredAt + 2n, answeredAt + 3n], 'each block mined after the answer, once');
});

test('every node stays away during the head read before a logs subscription is answered: it fails, rather than start past blocks mined after its answer', async (t) => {
  const { nodes, evmux } = await setup(t, 1);
  const client = await StreamClient.open(evmux.wsUrl, 'client');
  t.after(() => client.close());
  const node = nodes[0]!;
  const [subscribesBefore, readsBefore] = [subscribes(node), node.stats.requests.get('eth_getBlockByNumber') ?? 0];
  node.latencyMs = SLOW_MS;
  const reply = client.subscribe(['logs', { address: address(0) }]).then(() => 'answered', (error: Error) => error.message);
  await waitUntil('the head read after the upstream subscribe', () => subscribes(node) > subscribesBefore && (node.stats.requests.get('eth_getBlockByNumber') ?? 0) > readsBefore, 5000, 2);
  await sleep(20);
  node.latencyMs = 0;
  node.acceptConnections = false;
  node.dropConnections();
  // No head ever came on its stream (a quiet chain): evmux knows no head to start at.
  assert.match(await reply, /-32050|no upstream available/);
});

test('every node stays away during the head read, after a head came on its stream: the subscription starts at that head, and the blocks mined while it was away come once it is back', async (t) => {
  const { nodes, evmux } = await setup(t, 1);
  const client = await StreamClient.open(evmux.wsUrl, 'client');
  t.after(() => client.close());
  const node = nodes[0]!;
  // Another client's newHeads stream brings evmux the node's heads.
  const watcher = await StreamClient.open(evmux.wsUrl, 'watcher');
  t.after(() => watcher.close());
  const heads = await watcher.subscribe(['newHeads']);
  await watcher.first(heads);
  node.advance(1);
  const lastSent = node.head.number;
  await waitUntil('the head on the stream', () => watcher.tip(heads) === lastSent, 5000);
  const [subscribesBefore, readsBefore] = [subscribes(node), node.stats.requests.get('eth_getBlockByNumber') ?? 0];
  node.latencyMs = SLOW_MS;
  const reply = client.subscribe(['logs', { address: address(0) }]);
  await waitUntil('the head read after the upstream subscribe', () => subscribes(node) > subscribesBefore && (node.stats.requests.get('eth_getBlockByNumber') ?? 0) > readsBefore, 5000, 2);
  await sleep(20);
  node.latencyMs = 0;
  node.acceptConnections = false;
  node.dropConnections();
  const id = await reply;
  for (let i = 0; i < 2; i++) {
    node.addLog({ address: address(0), data: '0x01' });
    node.advance(1);
  }
  node.acceptConnections = true;
  node.addLog({ address: address(0), data: '0x01' });
  await waitUntil('the node back', async () => (JSON.parse((await evmux.get('/readyz')).body) as { usableUpstreams: number }).usableUpstreams === 1, 10_000);
  node.advance(1);
  await waitUntil('three logs', () => client.logs(id).length >= 3, 5000);
  assert.deepEqual(client.logs(id).map((log) => BigInt(log.blockNumber)), [lastSent + 1n, lastSent + 2n, lastSent + 3n], 'each block mined after the answer, once');
});

test("every node stays away during the head read, its heads not followed since blocks were mined: the subscription does not start at the old head", async (t) => {
  const node = await FakeNode.start({ seed: 'subscribe-failure', startHeight: 100 });
  t.after(() => node.close());
  const evmux = await startGateway([node.url], { subscriptions: { gracePeriodMs: 100 }, health: { probeIntervalMs: 100 } });
  t.after(() => evmux.close());
  await waitUntil('the node usable', async () => (JSON.parse((await evmux.get('/readyz')).body) as { usableUpstreams: number }).usableUpstreams === 1, 10_000);
  // A client follows the node's heads for a while, then leaves: its stream is released.
  const watcher = await StreamClient.open(evmux.wsUrl, 'watcher');
  const heads = await watcher.subscribe(['newHeads']);
  node.advance(1);
  await waitUntil('the head on the stream', () => watcher.tip(heads) === node.head.number, 5000);
  watcher.close();
  await waitUntil('the head stream released', () => Promise.resolve(node.stats.liveSubscriptions === 0), 5000);
  for (let i = 0; i < 5; i++) {
    node.addLog({ address: address(0), data: '0x01' });
    node.advance(1);
  }
  await waitUntil('a probe saw the blocks', async () => (JSON.parse((await evmux.get('/status')).body) as { upstreams: Array<{ head: string }> }).upstreams[0]!.head === String(node.head.number), 5000);

  const client = await StreamClient.open(evmux.wsUrl, 'client');
  t.after(() => client.close());
  const [subscribesBefore, readsBefore] = [subscribes(node), node.stats.requests.get('eth_getBlockByNumber') ?? 0];
  node.latencyMs = SLOW_MS;
  const reply = client.subscribe(['logs', { address: address(0) }]).then((id) => id, (error: Error) => error);
  await waitUntil('the head read after the upstream subscribe', () => subscribes(node) > subscribesBefore && (node.stats.requests.get('eth_getBlockByNumber') ?? 0) > readsBefore, 5000, 2);
  await sleep(20);
  const subscribedAt = node.head.number;
  node.latencyMs = 0;
  node.acceptConnections = false;
  node.dropConnections();
  const outcome = await reply;
  node.acceptConnections = true;
  if (outcome instanceof Error) {
    assert.match(outcome.message, /-32050/);
    return;
  }
  await waitUntil('the node back', async () => (JSON.parse((await evmux.get('/readyz')).body) as { usableUpstreams: number }).usableUpstreams === 1, 10_000);
  node.addLog({ address: address(0), data: '0x01' });
  node.advance(1);
  await waitUntil('a log', () => client.logs(outcome).length > 0, 5000);
  assert.deepEqual(client.logs(outcome).map((log) => BigInt(log.blockNumber)).filter((number) => number <= subscribedAt), [], 'no log of a block from before the subscribe');
});
