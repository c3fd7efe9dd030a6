/**
 * syncing subscriptions on fake nodes that behave as reth and geth do (anvil serves none): each new
 * subscription made on the node is sent its current status right after the reply, `false` when
 * synced. evmux holds one eth_subscribe per node for all its clients, and still every client gets
 * the status first, one moved to another node gets that node's status, and no client is sent the
 * status it already has.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { FakeNode } from '../support/fake-node.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { StreamClient, subscriptionsByUpstream, waitUntil } from '../support/stream-recorder.js';

const CLIENTS = 10;
const SYNCING = { syncing: true, status: { startingBlock: 100, currentBlock: 101, highestBlock: 200 } };

async function twoNodes(t: TestContext, syncing: { greeting?: unknown; inReplyWrite?: boolean }): Promise<{ a: FakeNode; b: FakeNode; evmux: TestGateway }> {
  const [a, b] = await Promise.all(['a', 'b'].map(() => FakeNode.start({ seed: 'syncing' })));
  for (const node of [a!, b!]) {
    node.syncing = { ...syncing };
    t.after(() => node.close());
  }
  const evmux = await startGateway([
    { name: 'a', url: a!.url },
    { name: 'b', url: b!.url },
  ]);
  t.after(() => evmux.close());
  return { a: a!, b: b!, evmux };
}

/** CLIENTS clients, each from an address of its own (127.0.0.2, …) so their sessions spread over both nodes, subscribed one after another. */
async function subscribers(t: TestContext, evmux: TestGateway): Promise<Array<{ client: StreamClient; statuses: () => unknown[] }>> {
  const all = [];
  for (let i = 0; i < CLIENTS; i++) {
    const client = await StreamClient.open(evmux.wsUrl, `client${i}`, `127.0.0.${i + 2}`);
    t.after(() => client.close());
    const id = await client.subscribe(['syncing']);
    all.push({ client, statuses: () => client.notifications(id).map((note) => note.result as unknown) });
  }
  return all;
}

/** eth_subscribe calls for syncing the node has received. */
const syncingSubscribes = (node: FakeNode): number => node.frames.filter((frame) => /"eth_subscribe".*"syncing"/.test(frame)).length;

test("each subscription first gets its node's status; a status the same as the last is not sent again", async (t) => {
  const { a, b, evmux } = await twoNodes(t, { greeting: false });
  const all = await subscribers(t, evmux);
  // Before: only the first subscriber on a node could get the node's greeting of evmux's subscription.
  await waitUntil('every subscriber has a status', () => all.every(({ statuses }) => statuses().length > 0), 5000);
  for (const node of [a, b]) {
    node.notify('syncing', SYNCING);
    node.notify('syncing', SYNCING);
    node.notify('syncing', false);
  }
  // The last one is the node's last: whatever came before it is here.
  await waitUntil('the last status everywhere', () => all.every(({ statuses }) => statuses().length >= 3), 5000);
  for (const { client, statuses } of all) assert.deepEqual(statuses(), [false, SYNCING, false], client.label);
});

test("clients moved to a node whose stream others hold get that node's status, and its changes right after", async (t) => {
  const { a, b, evmux } = await twoNodes(t, { greeting: false });
  const all = await subscribers(t, evmux);
  const onA = subscriptionsByUpstream((await evmux.get('/status')).body).get('a')?.get('syncing') ?? 0;
  assert.ok(onA > 0 && onA < CLIENTS, `sessions on both nodes (${onA} of ${CLIENTS} on a)`);
  // From here on every client has had the same statuses, whatever it was greeted with.
  const started = { syncing: true, status: { startingBlock: 100, currentBlock: 100, highestBlock: 200 } };
  for (const node of [a, b]) node.notify('syncing', started);
  const since = (subscriber: (typeof all)[number]): string[] => {
    const statuses = subscriber.statuses().map((status) => JSON.stringify(status));
    const from = statuses.indexOf(JSON.stringify(started));
    return from === -1 ? [] : statuses.slice(from + 1);
  };
  const told = (subscriber: (typeof all)[number]): boolean => subscriber.statuses().some((status) => JSON.stringify(status) === JSON.stringify(started));
  await waitUntil('every client told the nodes are syncing', () => all.every(told), 5000);
  a.notify('syncing', SYNCING);
  b.notify('syncing', false);
  await waitUntil('every client told its node progressed', () => all.every((subscriber) => since(subscriber).length === 1), 5000);
  const moved = new Set(all.filter((subscriber) => since(subscriber)[0] === JSON.stringify(SYNCING)));
  assert.equal(moved.size, onA);
  await a.close();
  // Before: b's stream, made for its own clients, had told them only: the moved kept `syncing: true`.
  await waitUntil("a's clients have b's status", () => [...moved].every((subscriber) => since(subscriber).at(-1) === 'false'), 5000);
  // A change and back within 5 s of the move: before, both were taken for ones sent lately, and dropped.
  b.notify('syncing', SYNCING);
  b.notify('syncing', false);
  const expected = (subscriber: (typeof all)[number]): unknown[] => [...(moved.has(subscriber) ? [SYNCING] : []), false, SYNCING, false].map((status) => JSON.stringify(status));
  await waitUntil('the last status everywhere', () => all.every((subscriber) => since(subscriber).length >= expected(subscriber).length), 5000);
  for (const subscriber of all) assert.deepEqual(since(subscriber), expected(subscriber), subscriber.client.label);
  assert.equal(syncingSubscribes(b), 1, 'one eth_subscribe on b for all its clients, those moved in too');
});

test("a syncing node's status written in one go with its subscribe answer (as geth flushes them) is every subscriber's first", async (t) => {
  const { a, b, evmux } = await twoNodes(t, { greeting: SYNCING, inReplyWrite: true });
  // Shaped unlike a notification: not passed on, so only the greeting can tell the status.
  for (const node of [a, b]) node.handle('eth_syncing', () => ({ startingBlock: '0x64', currentBlock: '0x65', highestBlock: '0xc8' }));
  const all = await subscribers(t, evmux);
  await waitUntil('every subscriber has a status', () => all.every(({ statuses }) => statuses().length > 0), 5000);
  for (const { client, statuses } of all) assert.deepEqual(statuses(), [SYNCING], client.label);
});

test('a node that sends new subscriptions no status: evmux asks it (eth_syncing), and passes on `false`', async (t) => {
  const { evmux } = await twoNodes(t, {});
  const all = await subscribers(t, evmux);
  await waitUntil('every subscriber has a status', () => all.every(({ statuses }) => statuses().length > 0), 5000);
  for (const { client, statuses } of all) assert.deepEqual(statuses(), [false], client.label);
});

test("a syncing node that sends new subscriptions no status: its progress from eth_syncing is not passed on, its stream's is", async (t) => {
  const { a, b, evmux } = await twoNodes(t, {});
  // Shaped unlike a notification (geth's has `syncing` and `status`).
  for (const node of [a, b]) node.handle('eth_syncing', () => ({ startingBlock: '0x64', currentBlock: '0x65', highestBlock: '0xc8' }));
  const all = await subscribers(t, evmux);
  for (const node of [a, b]) node.notify('syncing', SYNCING);
  await waitUntil('every subscriber has a status', () => all.every(({ statuses }) => statuses().length > 0), 5000);
  for (const { client, statuses } of all) assert.deepEqual(statuses(), [SYNCING], client.label);
  // Its answer stands for a while: not asked once per subscriber, one after another.
  assert.deepEqual([a, b].map((node) => node.stats.requests.get('eth_syncing') ?? 0), [1, 1]);
});

test("a node's subscription made anew: its greeting with the status clients have is not sent again, a new status is", async (t) => {
  const { a, b, evmux } = await twoNodes(t, { greeting: false });
  const all = await subscribers(t, evmux);
  await waitUntil('every subscriber has a status', () => all.every(({ statuses }) => statuses().length > 0), 5000);
  const before = [a, b].map(syncingSubscribes);
  for (const node of [a, b]) node.dropConnections();
  await waitUntil('subscribed anew on both nodes', () => [a, b].every((node, i) => syncingSubscribes(node) > before[i]!), 10_000);
  for (const node of [a, b]) node.notify('syncing', SYNCING);
  await waitUntil('the new status everywhere', () => all.every(({ statuses }) => statuses().length >= 2), 5000);
  for (const { client, statuses } of all) assert.deepEqual(statuses(), [false, SYNCING], client.label);
});
