/**
 * `upstreams[].role: fallback` on a 3-node lockstep anvil devnet: node2 (a paid provider behind
 * your own nodes, say) takes no calls and no subscriptions while node0 or node1 is usable. kill -9
 * both primaries: calls and streams go to the fallback, the streams without a gap. Restart one
 * primary: after hold-down the streams move back, and the fallback takes no more calls. Every
 * stream is then checked against the canonical chain.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, test } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { sumSamples } from '../support/prom-text.js';
import { FakeNode } from '../support/fake-node.js';
import { canonicalHashes, canonicalLogs, rpc, rpcAnswer } from '../support/node-rpc.js';
import { headProblems, logProblems, sleep, StreamClient, subscriptionsByUpstream, waitUntil, type GreetingWindow } from '../support/stream-recorder.js';

const CLIENTS = 3;

let devnet: LockstepDevnet;
let evmux: TestGateway;

before(async () => {
  devnet = await LockstepDevnet.start({ nodes: 3, blockTimeMs: 300, traffic: true });
  evmux = await startGateway(
    devnet.nodes.map((node, index) => ({ name: `node${index}`, url: node.wsUrl, ...(index === 2 ? { role: 'fallback' as const } : {}) })),
    { health: { maxLagBlocks: 5 } },
  );
});

after(async () => {
  await evmux?.close();
  await devnet?.close();
});

/** The one upstream holding every client's newHeads and logs subscriptions, once there is one. */
async function waitPinned(what: string, accept: (name: string) => boolean, timeoutMs = 10_000): Promise<string> {
  let pinned: string | undefined;
  await waitUntil(what, async () => {
    const byUpstream = subscriptionsByUpstream((await evmux.get('/status')).body);
    pinned = [...byUpstream].find(([name, kinds]) => kinds.get('newHeads') === CLIENTS && kinds.get('logs') === CLIENTS && accept(name))?.[0];
    return pinned !== undefined;
  }, timeoutMs, 50);
  return pinned!;
}

/** Calls made through evmux that node2 answered, so far. */
const fallbackCalls = async (): Promise<number> => sumSamples((await evmux.get('/metrics')).body, 'evmux_requests_total', { upstream: 'node2' });

async function calls(count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const height = await rpc<string>(evmux.httpUrl, 'eth_blockNumber', []);
    assert.match(height, /^0x[0-9a-f]+$/);
  }
}

test('a fallback serves only while no primary is usable, and streams cross to it and back without a gap', { timeout: 60_000 }, async () => {
  await waitUntil('three usable upstreams', async () => JSON.parse((await evmux.get('/readyz')).body).usableUpstreams === 3, 10_000);
  const status = JSON.parse((await evmux.get('/status')).body) as { upstreams: Array<{ name: string; role: string }> };
  assert.deepEqual(status.upstreams.map((upstream) => upstream.role), ['primary', 'primary', 'fallback']);

  const address = devnet.emitterAddress;
  const clients: Array<{ client: StreamClient; heads: string; logs: string; greeting: GreetingWindow; logsFrom: bigint }> = [];
  for (let i = 0; i < CLIENTS; i++) {
    const client = await StreamClient.open(evmux.wsUrl, `client${i}`);
    const low = BigInt(devnet.blockNumber) - 1n;
    const heads = await client.subscribe(['newHeads']);
    const logs = await client.subscribe(['logs', { address }]);
    // Every block mined after its logs subscription was answered: on a busy machine the clients'
    // subscribes can take longer than a block.
    const logsFrom = BigInt(devnet.blockNumber) + 1n;
    await client.first(heads);
    clients.push({ client, heads, logs, greeting: { low, high: BigInt(devnet.blockNumber) }, logsFrom });
  }
  const logsFrom = clients[0]!.logsFrom;
  const first = await waitPinned('clients pinned to a primary', (name) => name !== 'node2');
  await calls(30);
  assert.equal(await fallbackCalls(), 0, 'no call went to the fallback while primaries were usable');

  // Both primaries die: the fallback takes the streams and the calls.
  await Promise.all([devnet.kill(0), devnet.kill(1)]);
  await waitPinned('clients moved to the fallback', (name) => name === 'node2');
  await calls(10);
  assert.ok((await fallbackCalls()) >= 10, 'the fallback answered the calls');
  await sleep(1500);

  // A primary returns: after hold-down the streams go back to it, and calls leave the fallback.
  await devnet.restart(0);
  await waitPinned('clients back on the primary', (name) => name === 'node0', 20_000);
  const before = await fallbackCalls();
  await calls(20);
  assert.equal(await fallbackCalls(), before, 'no call went to the fallback once a primary was usable again');
  await sleep(1500);

  const end = BigInt(devnet.blockNumber) - 1n;
  await waitUntil('every client reached the end height', () => clients.every(({ client, heads }) => client.tip(heads) >= end), 10_000);
  const canonical = await canonicalHashes(devnet.nodes[0]!.httpUrl, logsFrom - 2n, end);
  const emitted = await canonicalLogs(devnet.nodes[0]!.httpUrl, { address }, logsFrom, end);
  assert.ok(emitted.length > 5, 'the emitter logged while the streams moved');
  const problems: string[] = [];
  for (const { client, heads, logs, greeting, logsFrom: from } of clients) {
    for (const problem of headProblems(client.heads(heads), canonical, end, greeting)) problems.push(`${client.label} newHeads: ${problem}`);
    for (const problem of logProblems(client.logs(logs), emitted, new Set(canonical.values()), from, end)) problems.push(`${client.label} logs: ${problem}`);
    if (client.closeCode !== undefined) problems.push(`${client.label}: closed with ${client.closeCode}`);
    client.close();
  }
  assert.deepEqual(problems, []);
  assert.notEqual(first, 'node2');
});

test('a call the only primary lets hang is retried on the fallback, though the primary answers its probes', async (t) => {
  const primary = await FakeNode.start({ seed: 'fallback-retry' });
  const fallback = await FakeNode.start({ seed: 'fallback-retry' });
  t.after(() => Promise.all([primary.close(), fallback.close()]));
  const gateway = await startGateway([{ name: 'primary', url: primary.url }, { name: 'fallback', url: fallback.url, role: 'fallback' }], { requestTimeoutMs: 500 }, { logLevel: 'warn' });
  t.after(() => gateway.close());
  primary.handle('eth_call', () => new Promise(() => {}));
  for (let i = 0; i < 3; i++) {
    const answer = await rpcAnswer(gateway.httpUrl, 'eth_call', [{ to: '0x0000000000000000000000000000000000000001', data: '0x' }, 'latest']);
    assert.equal(answer.error, undefined, `call ${i}: ${JSON.stringify(answer.error)}`);
  }
  assert.equal(fallback.stats.requests.get('eth_call'), 3, 'each call answered by the fallback after the primary timed out');
});

test('with every node well, a null read of the next block asks no fallback for a second opinion', async (t) => {
  const primary = await FakeNode.start({ seed: 'fallback-null' });
  const fallback = await FakeNode.start({ seed: 'fallback-null' });
  t.after(() => Promise.all([primary.close(), fallback.close()]));
  const gateway = await startGateway([{ name: 'primary', url: primary.url }, { name: 'fallback', url: fallback.url, role: 'fallback' }], {}, { logLevel: 'warn' });
  t.after(() => gateway.close());
  const head = BigInt((await rpcAnswer(gateway.httpUrl, 'eth_blockNumber', [])).result as string);
  const before = fallback.stats.requests.get('eth_getBlockByNumber') ?? 0;
  for (let i = 0; i < 10; i++) {
    const answer = await rpcAnswer(gateway.httpUrl, 'eth_getBlockByNumber', [`0x${(head + 1n).toString(16)}`, false]);
    assert.equal(answer.result, null, JSON.stringify(answer));
  }
  assert.equal((fallback.stats.requests.get('eth_getBlockByNumber') ?? 0) - before, 0, 'the fallback was asked');
});

test('every node away a moment, the fallback back first: the streams go to the primary once it is back, not after its hold-down', async (t) => {
  // After every node was down, the first back takes the sessions at once (each taking its own when
  // its hold-down ended moved them three times); a fallback back a few ms before the primary kept
  // every stream for the primary's whole hold-down (5 s), with the primary usable.
  const primary = await FakeNode.start({ seed: 'fallback-first', blockTimeMs: 100 });
  const fallback = await FakeNode.start({ seed: 'fallback-first', blockTimeMs: 100 });
  t.after(() => Promise.all([primary.close(), fallback.close()]));
  const gateway = await startGateway([{ name: 'primary', url: primary.url }, { name: 'fallback', url: fallback.url, role: 'fallback' }], {}, { logLevel: 'warn' });
  t.after(() => gateway.close());
  const client = await StreamClient.open(gateway.wsUrl, 'client');
  t.after(() => client.close());
  const id = await client.subscribe(['newHeads']);
  await client.first(id);
  await waitUntil('the stream on the primary', () => Promise.resolve(primary.stats.liveSubscriptions === 1), 5000);

  primary.acceptConnections = false;
  primary.dropConnections();
  fallback.dropConnections();
  await waitUntil('the stream on the fallback', () => Promise.resolve(fallback.stats.liveSubscriptions === 1), 5000);
  primary.acceptConnections = true;
  const back = performance.now();
  await waitUntil('the stream back on the primary', () => Promise.resolve(primary.stats.liveSubscriptions === 1), 5000);
  assert.ok(performance.now() - back < 1000, `back on the primary ${Math.round(performance.now() - back)} ms after it took connections again`);
  const tip = client.tip(id);
  await waitUntil('heads go on', () => client.tip(id) >= tip + 3n, 5000);
  assert.deepEqual(client.foreign, [], 'one id throughout');
});
