/**
 * A node that answers eth_subscribe with an error (a provider's cap on subscriptions, a kind it
 * does not serve, a filter or flag it does not take) is passed over for that subscription: clients
 * whose sessions map to it are subscribed on the next node on the ring instead of being refused as
 * long as it refuses. Other kinds and other filters stay where the ring puts them. Only when every
 * node refuses does the client get an error, and it carries the node's reason.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { SubscriptionKind } from '../support/fake-node-methods.js';
import { FakeNode } from '../support/fake-node.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { headProblems, StreamClient, waitUntil } from '../support/stream-recorder.js';

const CLIENTS = 10;

async function twoNodes(t: TestContext): Promise<{ a: FakeNode; b: FakeNode; evmux: TestGateway }> {
  const [a, b] = await Promise.all(['a', 'b'].map(() => FakeNode.start({ seed: 'refused' })));
  t.after(() => a!.close());
  t.after(() => b!.close());
  const evmux = await startGateway([
    { name: 'a', url: a!.url },
    { name: 'b', url: b!.url },
  ]);
  t.after(() => evmux.close());
  const ticker = setInterval(() => {
    a!.advance(1);
    b!.advance(1);
  }, 50);
  t.after(() => clearInterval(ticker));
  return { a: a!, b: b!, evmux };
}

/** CLIENTS clients, each from an address of its own (127.0.0.2, …), so their sessions spread over the ring. */
async function clients(t: TestContext, evmux: TestGateway): Promise<StreamClient[]> {
  const all = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => StreamClient.open(evmux.wsUrl, `client${i}`, `127.0.0.${i + 2}`)));
  t.after(() => all.forEach((client) => client.close()));
  return all;
}

const upstreamSubscriptions = (evmux: TestGateway, upstream: string, kind: SubscriptionKind): Promise<number | undefined> =>
  evmux.metric('evmux_upstream_subscriptions', { upstream, kind });

test('clients whose sessions map to a node that refuses newHeads are subscribed on the other node, gaplessly', async (t) => {
  const { a, b, evmux } = await twoNodes(t);
  a.refusedKinds.set('newHeads', 'too many subscriptions for this key');
  const all = await clients(t, evmux);
  const ids = await Promise.all(all.map((client) => client.subscribe(['newHeads'])));
  assert.ok((a.stats.requests.get('eth_subscribe') ?? 0) >= 1, 'some session mapped to the refusing node and was asked there first');
  const from = b.head.number;
  await waitUntil('ten more heads for everyone', () => all.every((client, i) => client.tip(ids[i]!) >= from + 10n), 5000);
  for (const [i, client] of all.entries()) {
    const tip = client.tip(ids[i]!);
    const canonical = new Map<bigint, string>();
    for (let n = client.heads(ids[i]!)[0]!.number; n <= tip; n++) canonical.set(n, b.header(n)!.hash);
    assert.deepEqual(headProblems(client.heads(ids[i]!), canonical, tip, 'unchecked'), [], client.label);
  }
  assert.equal(await upstreamSubscriptions(evmux, 'a', 'newHeads'), 0);
  assert.equal(await upstreamSubscriptions(evmux, 'b', 'newHeads'), 1);
  const warning = evmux.logs.find((line) => line['msg'] === 'upstream refused a subscription: its clients go to other nodes for a while');
  assert.equal(warning?.['upstream'], 'a');
  assert.equal(warning?.['kind'], 'newHeads');
  const status = JSON.parse((await evmux.get('/status')).body) as { upstreams: Array<{ name: string; subscriptions: { refused: string[] } }> };
  assert.deepEqual(
    status.upstreams.map((upstream) => [upstream.name, upstream.subscriptions.refused]),
    [
      ['a', ['newHeads', 'logs']],
      ['b', []],
    ],
  );
});

test('a node that refuses one kind keeps the sessions it owns for the others', async (t) => {
  const { a, evmux } = await twoNodes(t);
  a.refusedKinds.set('newPendingTransactions', 'method not supported');
  const all = await clients(t, evmux);
  for (const client of all) {
    await client.subscribe(['newHeads']);
    await client.subscribe(['newPendingTransactions']);
  }
  assert.equal(await upstreamSubscriptions(evmux, 'a', 'newHeads'), 1, 'the sessions that map to a have their heads there');
  assert.equal(await upstreamSubscriptions(evmux, 'b', 'newHeads'), 1);
  assert.equal(await upstreamSubscriptions(evmux, 'a', 'newPendingTransactions'), 0);
  assert.equal(await upstreamSubscriptions(evmux, 'b', 'newPendingTransactions'), 1);
});

test('when every node refuses, the client is told why', async (t) => {
  // The fake node serves no syncing subscriptions.
  const { a, b, evmux } = await twoNodes(t);
  const [client, next] = await clients(t, evmux);
  const reply = await client!.request('eth_subscribe', ['syncing']);
  const error = reply['error'] as { code: number; message: string } | undefined;
  assert.equal(error?.code, -32050);
  assert.match(error.message, /^cannot subscribe to syncing on upstream [ab]: [ab]: syncing subscription not live \([ab] refused eth_subscribe: unsupported subscription type syncing\)$/);
  // Before: a client asking while the refusals last (a minute) was told only "no upstream available for subscriptions".
  const nextReply = await next!.request('eth_subscribe', ['syncing']);
  assert.deepEqual(nextReply['error'], reply['error'], 'a client asking after it is told the same');
  assert.equal((a.stats.requests.get('eth_subscribe') ?? 0) + (b.stats.requests.get('eth_subscribe') ?? 0), 2, 'each node asked once');
  const again = await client!.request('eth_subscribe', ['newHeads']);
  assert.equal(typeof again['result'], 'string', 'other kinds are still served');
});

test("one client's filter that every node refuses: that client is told why, everyone else's filters of the kind stay served", async (t) => {
  const { a, b, evmux } = await twoNodes(t);
  const odd = '0x00000000000000000000000000000000000000dd';
  for (const node of [a, b]) {
    node.refuse = (subscription) => (JSON.stringify(subscription.criteria).includes(odd) ? 'filter not supported' : undefined);
  }
  const all = await clients(t, evmux);
  const refused = await all[0]!.request('eth_subscribe', ['logs', { address: odd }]);
  assert.match((refused['error'] as { message: string } | undefined)?.message ?? JSON.stringify(refused), /filter not supported/);
  assert.deepEqual((await all[1]!.request('eth_subscribe', ['logs', { address: odd }]))['error'], refused['error'], 'the next client asking for it is told the same');
  // Before: the refusal covered every logs filter on every node for a minute.
  for (const client of all) {
    const reply = await client.request('eth_subscribe', ['logs', { address: '0x00000000000000000000000000000000000000ee' }]);
    assert.equal(typeof reply['result'], 'string', `${client.label}: ${JSON.stringify(reply)}`);
  }
  assert.equal((await upstreamSubscriptions(evmux, 'a', 'logs')) ?? 0, 1, 'the sessions that map to a have their logs there');
  assert.equal((await upstreamSubscriptions(evmux, 'b', 'logs')) ?? 0, 1);
  // The refused filter's streams are gone at once, not kept for the grace period, where they
  // counted against limits.maxLogFiltersPerUpstream.
  const status = JSON.parse((await evmux.get('/status')).body) as { upstreams: Array<{ subscriptions: { streams: Array<{ key: string }> } }> };
  for (const upstream of status.upstreams) assert.ok(!upstream.subscriptions.streams.some((stream) => stream.key.includes(odd.slice(2))), JSON.stringify(upstream.subscriptions.streams));
});

test('a node that refuses a filter is passed over for it whatever block numbers bound it: they ride on the eth_subscribe it refused', async (t) => {
  const { a, evmux } = await twoNodes(t);
  const odd = '0x00000000000000000000000000000000000000dd';
  a.refuse = (subscription) => (JSON.stringify(subscription.criteria).includes(odd) ? 'filter not supported' : undefined);
  const all = await clients(t, evmux);
  for (const [i, client] of all.entries()) {
    const reply = await client.request('eth_subscribe', ['logs', { address: odd, fromBlock: `0x${(i + 1).toString(16)}` }]);
    assert.equal(typeof reply['result'], 'string', `${client.label}: ${JSON.stringify(reply)}`);
  }
  assert.ok((a.stats.requests.get('eth_subscribe') ?? 0) >= 1, 'some session mapped to the refusing node and was asked there first');
  assert.equal((await upstreamSubscriptions(evmux, 'a', 'logs')) ?? 0, 0);
  assert.equal(await upstreamSubscriptions(evmux, 'b', 'logs'), 1, 'one eth_subscribe for every block range');
});

test('a node that answers eth_subscribe with no subscription id (a number here) is passed over as if it refused, and asked to undo it', async (t) => {
  const { a, b, evmux } = await twoNodes(t);
  const unsubscribed: unknown[] = [];
  a.handle('eth_subscribe', () => 7);
  a.handle('eth_unsubscribe', (params) => unsubscribed.push(params[0]) > 0);
  const all = await clients(t, evmux);
  const ids = await Promise.all(all.map((client) => client.subscribe(['newHeads'])));
  assert.ok((a.stats.requests.get('eth_subscribe') ?? 0) >= 1, 'some session mapped to the broken node and was asked there first');
  const from = b.head.number;
  await waitUntil('five more heads for everyone', () => all.every((client, i) => client.tip(ids[i]!) >= from + 5n), 5000);
  assert.equal(await upstreamSubscriptions(evmux, 'b', 'newHeads'), 1);
  await waitUntil('the number unsubscribed', () => unsubscribed.includes(7), 2000);
  const warning = evmux.logs.find((line) => line['msg'] === 'upstream refused a subscription: its clients go to other nodes for a while');
  assert.match(String(warning?.['err']), /answered eth_subscribe with 7, not a subscription id/);
});
