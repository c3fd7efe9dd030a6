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
