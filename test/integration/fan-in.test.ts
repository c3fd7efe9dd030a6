/**
 * 500 WebSocket clients on newHeads and one logs filter cost each upstream at most one
 * eth_subscribe per kind, every client gets the very same bytes for the same notification, and the
 * upstream subscriptions go away one grace period after the last client leaves (and can be made
 * again afterwards). Once with every client on one session key (all pinned to one node), once with
 * a session key per client (spread over the nodes).
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { FakeNode } from '../support/fake-node.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { sumSamples } from '../support/prom-text.js';
import { sleep, StreamClient, subscriptionsByUpstream, toHead, waitUntil } from '../support/stream-recorder.js';

const CLIENTS = 500;
const GRACE_MS = 1500;
const EMITTER = '0x00000000000000000000000000000000000000aa';
const TOPIC = `0x${'11'.repeat(32)}` as const;
const KINDS = ['newHeads', 'logs'] as const;

const nodes: FakeNode[] = [];
const gateways: TestGateway[] = [];

after(async () => {
  for (const gateway of gateways) await gateway.close();
  for (const node of nodes) await node.close();
});

/** Three fake nodes of one chain: same seed, and every change applied to all of them. */
async function startNodes(seed: string): Promise<FakeNode[]> {
  const started = await Promise.all([0, 1, 2].map(() => FakeNode.start({ seed, startHeight: 100 })));
  nodes.push(...started);
  return started;
}

/** The next block on every node, with one emitter log in it. */
function mineWithLog(chain: FakeNode[]): void {
  for (const node of chain) node.addLog({ address: EMITTER, topics: [TOPIC], data: '0x01' });
  for (const node of chain) node.advance(1);
}

async function upstreamSubscriptions(evmux: TestGateway): Promise<Map<string, number>> {
  const text = (await evmux.get('/metrics')).body;
  const out = new Map<string, number>();
  for (const upstream of ['node0', 'node1', 'node2']) {
    for (const kind of KINDS) out.set(`${upstream}/${kind}`, sumSamples(text, 'evmux_upstream_subscriptions', { upstream, kind }));
  }
  return out;
}

interface Joined {
  client: StreamClient;
  heads: string;
  logs: string;
}

/** Every client subscribed, and greeted on newHeads with the head current meanwhile (nothing mines). */
async function joinAll(url: (i: number) => string): Promise<Joined[]> {
  const joined: Joined[] = [];
  for (let batch = 0; batch < CLIENTS; batch += 50) {
    joined.push(...(await Promise.all(Array.from({ length: Math.min(50, CLIENTS - batch) }, async (_, k) => {
      const client = await StreamClient.open(url(batch + k), `c${batch + k}`);
      const [heads, logs] = await Promise.all([client.subscribe(['newHeads']), client.subscribe(['logs', { address: EMITTER }])]);
      await client.first(heads, 10_000);
      return { client, heads, logs };
    }))));
  }
  return joined;
}

async function fanIn(evmux: TestGateway, chain: FakeNode[], url: (i: number) => string): Promise<Map<string, number>> {
  const current = chain[0]!.head;
  const joined = await joinAll(url);
  try {
    // Ids come from the filter: every client of a topic holds the same one.
    assert.equal(new Set(joined.map((j) => j.heads)).size, 1, 'one newHeads id for all');
    assert.equal(new Set(joined.map((j) => j.logs)).size, 1, 'one logs id for all');
    assert.equal(await evmux.metric('evmux_client_subscriptions', { kind: 'newHeads' }), CLIENTS);
    assert.equal(await evmux.metric('evmux_client_subscriptions', { kind: 'logs' }), CLIENTS);

    // The greeting goes to each client alone, and is still the same bytes for all: same id, same head.
    const greetings = new Set(joined.map((j) => j.client.notifications(j.heads)[0]!.raw));
    assert.equal(greetings.size, 1, 'identical greeting bytes for every client');
    const greeting = toHead(JSON.parse([...greetings][0]!).params.result);
    assert.deepEqual([greeting.number, greeting.hash], [current.number, current.hash], 'the greeting is the head at subscribe time');
    assert.ok(joined.every((j) => j.client.notifications(j.logs).length === 0), 'no greeting on logs');

    for (let round = 1; round <= 2; round++) {
      mineWithLog(chain);
      await waitUntil(`round ${round}: every client got the head and the log`, () =>
        joined.every((j) => j.client.notifications(j.heads).length >= round + 1 && j.client.notifications(j.logs).length >= round), 10_000);
      const heads = new Set(joined.map((j) => j.client.notifications(j.heads)[round]!.raw));
      const logs = new Set(joined.map((j) => j.client.notifications(j.logs)[round - 1]!.raw));
      assert.equal(heads.size, 1, `round ${round}: identical newHeads bytes for every client`);
      assert.equal(logs.size, 1, `round ${round}: identical log bytes for every client`);
      const head = toHead(JSON.parse([...heads][0]!).params.result);
      assert.equal(head.hash, chain[0]!.head.hash);
      assert.equal(head.parentHash, chain[0]!.header(head.number - 1n)!.hash, 'links to the head delivered before it');
    }
    await sleep(100);
    assert.ok(joined.every((j) => j.client.notifications(j.heads).length === 3 && j.client.notifications(j.logs).length === 2), 'nothing delivered twice');

    const live = await upstreamSubscriptions(evmux);
    for (const [where, count] of live) assert.ok(count <= 1, `${where}: ${count} upstream subscriptions, at most 1 allowed`);
    // The nodes agree: each holds at most one subscription per kind from evmux.
    for (const node of chain) assert.ok(node.stats.liveSubscriptions <= KINDS.length, `a fake node holds ${node.stats.liveSubscriptions} subscriptions`);
    const byUpstream = subscriptionsByUpstream((await evmux.get('/status')).body);
    const held = [...byUpstream.values()].reduce((sum, kinds) => sum + (kinds.get('newHeads') ?? 0), 0);
    assert.equal(held, CLIENTS, '/status lists every newHeads client');
    return live;
  } finally {
    for (const j of joined) j.client.close();
  }
}

async function drained(evmux: TestGateway, chain: FakeNode[]): Promise<void> {
  await waitUntil('evmux saw every client leave', async () => (await evmux.metric('evmux_client_connections')) === 0, 5000);
  const left = Date.now();
  assert.equal(sumSamples((await evmux.get('/metrics')).body, 'evmux_client_subscriptions'), 0);
  // Within the grace period the upstream subscriptions stay, for clients that come right back.
  const during = [...(await upstreamSubscriptions(evmux)).values()].reduce((a, b) => a + b, 0);
  if (Date.now() - left < GRACE_MS - 200) assert.ok(during > 0, 'upstream subscriptions outlive their clients by the grace period');
  await waitUntil('upstream subscriptions released after the grace period', async () =>
    [...(await upstreamSubscriptions(evmux)).values()].every((count) => count === 0), GRACE_MS + 3000);
  assert.ok(Date.now() - left >= GRACE_MS - 100, 'not released before the grace period ended');
  await waitUntil('the nodes hold no subscription', () => chain.every((node) => node.stats.liveSubscriptions === 0), 2000);
}

/** After the release, a new client gets a fresh upstream subscription and its heads. */
async function comesBack(evmux: TestGateway, chain: FakeNode[], url: string): Promise<void> {
  const client = await StreamClient.open(url, 'late');
  try {
    const current = chain[0]!.head;
    const heads = await client.subscribe(['newHeads']);
    const logs = await client.subscribe(['logs', { address: EMITTER }]);
    assert.equal(toHead((await client.first(heads)).result).hash, current.hash, 'greeted with the current head');
    mineWithLog(chain);
    await waitUntil('a late client gets the next head and log', () => client.notifications(heads).length === 2 && client.notifications(logs).length === 1, 5000);
    const next = client.heads(heads)[1]!;
    assert.deepEqual([next.hash, next.parentHash], [chain[0]!.head.hash, current.hash]);
  } finally {
    client.close();
  }
}

test('500 clients on one session key: one upstream subscription per kind, identical bytes, released after grace', { timeout: 60_000 }, async () => {
  const chain = await startNodes('fan-in-one');
  const evmux = await startGateway(chain.map((node) => node.url), {
    limits: { maxConnectionsPerIp: CLIENTS + 50 },
    subscriptions: { gracePeriodMs: GRACE_MS },
  }, { logLevel: 'warn' });
  gateways.push(evmux);
  const live = await fanIn(evmux, chain, () => evmux.wsUrl);
  for (const kind of KINDS) {
    const total = [...live].filter(([where]) => where.endsWith(`/${kind}`)).reduce((sum, [, count]) => sum + count, 0);
    assert.equal(total, 1, `one ${kind} subscription upstream in total: every client is pinned to one node`);
  }
  await drained(evmux, chain);
  await comesBack(evmux, chain, evmux.wsUrl);
});

test('500 clients with their own session keys: spread over the nodes, still at most one subscription per node and kind', { timeout: 60_000 }, async () => {
  const chain = await startNodes('fan-in-spread');
  const evmux = await startGateway(chain.map((node) => node.url), {
    limits: { maxConnectionsPerIp: CLIENTS + 50 },
    subscriptions: { gracePeriodMs: GRACE_MS, sessionKey: { source: 'query', name: 'session' } },
  }, { logLevel: 'warn' });
  gateways.push(evmux);
  const live = await fanIn(evmux, chain, (i) => `${evmux.wsUrl}?session=client-${i}`);
  for (const kind of KINDS) {
    const nodesUsed = [...live].filter(([where, count]) => where.endsWith(`/${kind}`) && count === 1).length;
    assert.equal(nodesUsed, 3, `${kind}: 500 session keys land on all three nodes`);
  }
  await drained(evmux, chain);
  await comesBack(evmux, chain, `${evmux.wsUrl}?session=late`);
});

test('the same filter twice on one connection: a variant id, every head on both, and each id the same for every client', { timeout: 30_000 }, async () => {
  const chain = await startNodes('fan-in-variants');
  const evmux = await startGateway(chain.map((node) => node.url), {}, { logLevel: 'warn' });
  gateways.push(evmux);
  const [a, b] = await Promise.all([StreamClient.open(evmux.wsUrl, 'a'), StreamClient.open(evmux.wsUrl, 'b')]);
  try {
    const idsA = [await a!.subscribe(['newHeads']), await a!.subscribe(['newHeads'])];
    const idsB = [await b!.subscribe(['newHeads']), await b!.subscribe(['newHeads'])];
    assert.notEqual(idsA[0], idsA[1], 'a variant id for the second subscription');
    assert.deepEqual(idsB, idsA, 'ids depend on the filter and the variant only');
    const current = chain[0]!.head;
    await waitUntil('every subscription greeted', () => [a!, b!].every((c) => idsA.every((id) => c.notifications(id).length === 1)), 5000);
    for (const id of idsA) {
      assert.equal(a!.notifications(id)[0]!.raw, b!.notifications(id)[0]!.raw, `identical greeting bytes on ${id}`);
      assert.equal(a!.heads(id)[0]!.hash, current.hash, `greeted with the current head on ${id}`);
    }
    mineWithLog(chain);
    await waitUntil('both subscriptions of both clients get the head', () => [a!, b!].every((c) => idsA.every((id) => c.notifications(id).length === 2)), 5000);
    for (const id of idsA) {
      assert.equal(a!.notifications(id)[1]!.raw, b!.notifications(id)[1]!.raw, `identical bytes on ${id}`);
      assert.equal(a!.heads(id)[1]!.parentHash, current.hash, `the head after the greeting links to it on ${id}`);
    }
    assert.deepEqual((await a!.request('eth_unsubscribe', [idsA[1]])).result, true);
    assert.deepEqual((await a!.request('eth_unsubscribe', [idsA[1]])).result, false, 'true once, false after');
    mineWithLog(chain);
    await waitUntil('the remaining subscriptions get the next head', () => a!.notifications(idsA[0]!).length === 3 && b!.notifications(idsA[1]!).length === 3, 5000);
    await sleep(100);
    assert.equal(a!.notifications(idsA[1]!).length, 2, 'nothing after unsubscribe');
    assert.equal(sumSamples((await evmux.get('/metrics')).body, 'evmux_upstream_subscriptions', { kind: 'newHeads' }), 1, 'four client subscriptions, one upstream');

    // The same filter again on that connection: an id of its own, so the old one stays unsubscribed.
    const again = await a!.subscribe(['newHeads']);
    assert.ok(!idsA.includes(again), 'not an id this connection unsubscribed');
    assert.deepEqual((await a!.request('eth_unsubscribe', [idsA[1]])).result, false, 'the old id, unsubscribed again');
    mineWithLog(chain);
    await waitUntil('the new subscription gets the next head', () => a!.heads(again).length === 2, 5000);
  } finally {
    a!.close();
    b!.close();
  }
});
