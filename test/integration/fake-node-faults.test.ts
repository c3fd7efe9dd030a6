/**
 * Upstream faults anvil cannot show, played by fake nodes behind an in-process evmux: a node that
 * hangs, one at its concurrency cap, one that stops answering pings, a slow one, a lagging one, one
 * that sends garbage, a circuit breaker opening and closing, and eth_sendRawTransaction across nodes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { keccak256 } from 'viem';
import { WebSocketServer } from 'ws';
import { FakeNode, FakeRpcError } from '../support/fake-node.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { scrapeSum } from '../support/prom-text.js';
import { Probe } from '../support/ws-probe.js';
import { decodeFilterId } from '../../src/router/filter-id.js';

type Overrides = Parameters<typeof startGateway>[1];

interface Setup {
  nodes: FakeNode[];
  evmux: TestGateway;
}

/** `count` fake nodes of one chain (same seed) named node0.., and evmux in front of them. */
async function setup(t: TestContext, count: number, overrides: Overrides = {}): Promise<Setup> {
  const nodes = await Promise.all(Array.from({ length: count }, () => FakeNode.start({ seed: 'faults' })));
  t.after(() => Promise.all(nodes.map((node) => node.close())));
  const evmux = await startGateway(
    nodes.map((node) => node.url),
    overrides,
  );
  t.after(() => evmux.close());
  await waitFor('every node usable', async () => (await statusOf(evmux)).every((upstream) => upstream.usable), 5_000);
  return { nodes, evmux };
}

interface UpstreamStatus {
  name: string;
  usable: boolean;
  healthy: boolean;
  connected: boolean;
  breaker: string;
  lag: number | null;
}

async function statusOf(evmux: TestGateway): Promise<UpstreamStatus[]> {
  return (JSON.parse((await evmux.get('/status')).body) as { upstreams: UpstreamStatus[] }).upstreams;
}

async function upstreamOf(evmux: TestGateway, name: string): Promise<UpstreamStatus> {
  const entry = (await statusOf(evmux)).find((upstream) => upstream.name === name);
  assert.ok(entry, `/status lists ${name}`);
  return entry;
}

async function waitFor(what: string, condition: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(20);
  }
  return Date.now() - started;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

let nextId = 1;

async function call(evmux: TestGateway, method: string, params: unknown[] = []): Promise<Record<string, unknown>> {
  const id = nextId++;
  const response = await fetch(evmux.httpUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id, method, params }),
  });
  const reply = (await response.json()) as Record<string, unknown>;
  assert.equal(reply['id'], id);
  return reply;
}

/** Calls that must all succeed; returns each one's duration in ms. */
async function callsSucceed(evmux: TestGateway, count: number, concurrency: number, method = 'web3_clientVersion', params: unknown[] = []): Promise<number[]> {
  const durations: number[] = [];
  let issued = 0;
  const worker = async (): Promise<void> => {
    while (issued++ < count) {
      const started = performance.now();
      const reply = await call(evmux, method, params);
      assert.ok('result' in reply, `${method} failed: ${JSON.stringify(reply)}`);
      durations.push(performance.now() - started);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return durations;
}

const requests = (node: FakeNode, method: string): number => node.stats.requests.get(method) ?? 0;

const upstreamCalls = (evmux: TestGateway, upstream: string, outcome?: string): Promise<number> =>
  scrapeSum(evmux.httpUrl, 'evmux_requests_total', outcome === undefined ? { upstream } : { upstream, outcome });

// Probes run only when a socket opens, so that calls, heartbeat and breaker are what is tested.
const NO_PROBES = { health: { probeIntervalMs: 60_000 } };

test('a node that accepts calls and never answers: calls time out on it and succeed elsewhere', async (t) => {
  const { nodes, evmux } = await setup(t, 3, { ...NO_PROBES, requestTimeoutMs: 300, breaker: { failureThreshold: 1000 } });
  const hung = nodes[1]!;
  hung.mode = 'hang';
  // One call at a time: with calls in flight least connections would already steer around it. A
  // timeout counts as the node's latency, so it is tried again only once that has faded (slow-node-balancing.test.ts).
  const durations = await callsSucceed(evmux, 12, 1);
  assert.ok(requests(hung, 'web3_clientVersion') >= 1, `the hung node got ${requests(hung, 'web3_clientVersion')} calls`);
  assert.equal(await upstreamCalls(evmux, 'node1', 'timeout'), requests(hung, 'web3_clientVersion'), 'every call sent to it timed out');
  assert.equal(await upstreamCalls(evmux, 'node1', 'ok'), 0);
  // A call that met the hung node paid one timeout, not more: the retry went to a live node.
  const slowest = Math.max(...durations);
  assert.ok(slowest >= 300 && slowest < 300 + 500, `slowest call took ${Math.round(slowest)} ms`);
});

test('a node at its concurrency cap: calls wait in its queue, those beyond it are refused, and every slot comes back', async (t) => {
  const node = await FakeNode.start({ seed: 'faults' });
  t.after(() => node.close());
  const evmux = await startGateway([{ name: 'node0', url: node.url, maxConcurrency: 1, maxQueue: 1 }], {
    ...NO_PROBES,
    requestTimeoutMs: 300,
    retry: { maxAttempts: 1 },
    breaker: { failureThreshold: 1000 },
  });
  t.after(() => evmux.close());
  await waitFor('node usable', async () => (await upstreamOf(evmux, 'node0')).usable, 5_000);
  node.mode = 'hang';
  const started = performance.now();
  const replies = await Promise.all(Array.from({ length: 4 }, () => call(evmux, 'web3_clientVersion')));
  const elapsed = performance.now() - started;
  const messages = replies.map((reply) => String((reply['error'] as { message?: unknown } | undefined)?.message)).sort();
  // One call holds the slot and times out on the node; one waits for it and times out, in the queue
  // or let in as the slot frees with no time left. The other two find the queue full.
  const full = messages.filter((message) => message.includes('EVMUX_QUEUE_FULL'));
  assert.equal(full.length, 2, messages.join('\n'));
  // The limits are named, so an operator can tell them from a node that is down.
  for (const message of full) assert.match(message, /node0: request queue full \(1 calls waiting, upstreams\[\]\.maxQueue, behind 1 in flight, upstreams\[\]\.maxConcurrency\)/);
  assert.equal(messages.filter((message) => /EVMUX_(QUEUE_)?TIMEOUT/.test(message)).length, 2, messages.join('\n'));
  assert.ok(elapsed < 300 + 500, `the calls took ${Math.round(elapsed)} ms`);
  // Only calls that reached the node count as its timeouts, and in the latency histogram; those
  // refused before they left evmux are `rejected`, not transport errors of a node that is only busy.
  const sent = requests(node, 'web3_clientVersion');
  assert.equal(await upstreamCalls(evmux, 'node0', 'timeout'), sent);
  assert.equal(await upstreamCalls(evmux, 'node0', 'rejected'), 4 - sent);
  assert.equal(await upstreamCalls(evmux, 'node0', 'transport_error'), 0);
  assert.equal(await scrapeSum(evmux.httpUrl, 'evmux_request_duration_seconds_count', { method: 'web3_clientVersion' }), sent);
  node.mode = 'normal';
  const status = (await statusOf(evmux)).find((upstream) => upstream.name === 'node0') as UpstreamStatus & { inFlight: number; queued: number };
  assert.deepEqual([status.inFlight, status.queued], [0, 0], 'no slot or queue entry is left behind');
  await callsSucceed(evmux, 3, 1);
});

test('a hung node that drops pongs: the heartbeat terminates its sockets and marks it down', async (t) => {
  // Probes slow enough (two misses take ≥ 1.9 s) that only the heartbeat can be this quick.
  const { nodes, evmux } = await setup(t, 2, { heartbeat: { intervalMs: 200, timeoutMs: 400 }, health: { probeIntervalMs: 1000, probeTimeoutMs: 900 } });
  const hung = nodes[1]!;
  const connectionsBefore = hung.stats.connectionsTotal;
  hung.mode = 'hang';
  hung.answerPings = false;
  const downAfter = await waitFor('node1 marked down', async () => !(await upstreamOf(evmux, 'node1')).usable, 3_000);
  // Detection needs one ping interval plus the pong timeout (≤ 600 ms here) and nothing else.
  assert.ok(downAfter <= 1_500, `marked down after ${downAfter} ms`);
  assert.equal(await evmux.metric('evmux_upstream_up', { upstream: 'node1' }), 0);
  const terminated = evmux.logs.filter((line) => line['upstream'] === 'node1' && line['msg'] === 'terminating upstream socket');
  assert.ok(terminated.length >= 1, 'a terminating log line for node1');
  assert.match(String(terminated[0]!['reason']), /no pong within 400 ms/);
  const down = evmux.logs.find((line) => line['upstream'] === 'node1' && line['msg'] === 'upstream down');
  // Marked down by the terminated sockets: when they close, or, when a probe was waiting on the
  // first one to close, by that probe failing with it a moment earlier (never by a probe's timeout).
  assert.match(String(down?.['reason']), /^(all sockets closed|probe failed: node1: socket closed)$/);
  // It reconnects (the port is open) but stays down: its probes are never answered. More than one
  // round of reconnects of its one socket (the default upstreams[].connections).
  await waitFor('node1 reconnected', () => Promise.resolve(hung.stats.connectionsTotal > connectionsBefore + 1), 3_000);
  assert.equal((await upstreamOf(evmux, 'node1')).usable, false);
  await callsSucceed(evmux, 10, 2);

  hung.mode = 'normal';
  hung.answerPings = true;
  await waitFor('node1 usable again', async () => (await upstreamOf(evmux, 'node1')).usable, 5_000);
});

test("every node's sockets closed at once (a network blip): a subscribe and a call made then wait for the node, which is back with its first good probe", async (t) => {
  // The defaults: probes a second apart, two good ones to come back after an outage.
  const { nodes, evmux } = await setup(t, 1, { health: { probeIntervalMs: 1000, recoveryThreshold: 2 } });
  const client = await Probe.open(evmux.wsUrl, t);
  for (let round = 0; round < 3; round++) {
    nodes[0]!.dropConnections();
    await waitFor('node0 down', () => Promise.resolve(evmux.logs.filter((line) => line['msg'] === 'upstream down').length > round), 2_000);
    const [subscribed, blockNumber] = await Promise.all([client.request('eth_subscribe', ['newHeads'], 3_000), client.request('eth_blockNumber', [], 3_000)]);
    assert.equal(typeof subscribed['result'], 'string', `round ${round}: ${JSON.stringify(subscribed)}`);
    assert.equal(blockNumber['result'], '0x64', `round ${round}: ${JSON.stringify(blockNumber)}`);
    assert.equal((await client.request('eth_unsubscribe', [subscribed['result']]))['result'], true);
  }
  const down = evmux.logs.filter((line) => line['msg'] === 'upstream down').length;
  assert.equal(down, 3, 'down once per blip');
});

test('every node down: a read of a block they had fails as every call does then, not as a block no node has yet', async (t) => {
  const { nodes, evmux } = await setup(t, 2, NO_PROBES);
  for (const node of nodes) {
    node.acceptConnections = false;
    node.dropConnections();
  }
  await waitFor('every node down', async () => (await statusOf(evmux)).every((upstream) => !upstream.usable), 2_000);
  const read = await call(evmux, 'eth_getBlockByNumber', ['0x64', false]);
  const error = read['error'] as { code: number; message: string } | undefined;
  assert.equal(error?.code, -32050, JSON.stringify(read));
  assert.match(error.message, /no upstream available/);
});

test("logs of the 'pending' block in an eth_getLogs answer do not count as a node's head", async (t) => {
  const { nodes, evmux } = await setup(t, 2, NO_PROBES);
  const pendingLog = { address: `0x${'ee'.repeat(20)}`, topics: [], data: '0x', blockNumber: '0x65', blockHash: `0x${'11'.repeat(32)}`, logIndex: '0x0', transactionHash: `0x${'22'.repeat(32)}`, transactionIndex: '0x0', removed: false };
  for (const node of nodes) node.handle('eth_getLogs', () => [pendingLog]);
  for (let i = 0; i < 4; i++) assert.ok('result' in (await call(evmux, 'eth_getLogs', [{ fromBlock: '0x64', toBlock: 'pending' }])));
  assert.equal((await call(evmux, 'eth_blockNumber'))['result'], '0x64', 'every node is at block 100');
});

test('a fallback node ahead of the primaries: a read of a block only it has is answered by the primaries, not held for it', async (t) => {
  const nodes = await Promise.all([0, 1, 2].map(() => FakeNode.start({ seed: 'faults' })));
  t.after(() => Promise.all(nodes.map((node) => node.close())));
  nodes[2]!.advance(2);
  const evmux = await startGateway(nodes.map((node, index) => ({ name: `node${index}`, url: node.url, ...(index === 2 ? { role: 'fallback' as const } : {}) })));
  t.after(() => evmux.close());
  await waitFor('the fallback seen at 102', async () => (await upstreamOf(evmux, 'node2')).lag === 0, 5_000);
  // A node that never served had it: the primaries' null (none of them has it yet), at once.
  const reply = await call(evmux, 'eth_getBlockByNumber', ['0x66', false]);
  assert.ok('result' in reply && reply['result'] === null, JSON.stringify(reply));
});

test('a slow node next to fast ones: least connections sends it clearly fewer calls', async (t) => {
  const { nodes, evmux } = await setup(t, 3);
  nodes[2]!.latencyMs = 60;
  await callsSucceed(evmux, 600, 12);
  const counts = await Promise.all(['node0', 'node1', 'node2'].map((name) => upstreamCalls(evmux, name, 'ok')));
  const total = counts.reduce((sum, n) => sum + n, 0);
  assert.equal(total, 600);
  const [fast0, fast1, slow] = counts as [number, number, number];
  // Round robin would give each a third (200); the slow node holds its calls 60 ms, so least
  // connections only sends it what the fast ones are momentarily too busy for.
  assert.ok(slow < total * 0.12, `slow node got ${slow} of ${total} calls (${counts.join(', ')})`);
  assert.ok(fast0 > total * 0.3 && fast1 > total * 0.3, `fast nodes got ${fast0} and ${fast1} of ${total}`);
  assert.ok(slow > 0, 'the slow node is still used a little');
});

test('a lagging node is excluded while more than maxLagBlocks behind and included again after it catches up', async (t) => {
  const { nodes, evmux } = await setup(t, 3, { health: { maxLagBlocks: 3 } });
  const [a, b, laggard] = nodes as [FakeNode, FakeNode, FakeNode];
  a.advance(4);
  b.advance(4);
  const excludedAfter = await waitFor('node2 excluded', async () => !(await upstreamOf(evmux, 'node2')).usable, 3_000);
  assert.ok(excludedAfter < 1_500, `excluded after ${excludedAfter} ms`);
  const lagging = await upstreamOf(evmux, 'node2');
  assert.equal(lagging.healthy, true, 'it still answers: only its lag keeps it out');
  assert.equal(lagging.lag, 4);
  // A read of an old block, which every node has (reads of "latest" go to the nodes ahead anyway).
  const oldBlock = [`0x${'aa'.repeat(20)}`, '0x1'];
  const before = requests(laggard, 'eth_getBalance');
  await callsSucceed(evmux, 30, 3, 'eth_getBalance', oldBlock);
  assert.equal(requests(laggard, 'eth_getBalance'), before, 'no call reaches the lagging node');

  // Within maxLagBlocks is close enough.
  laggard.advance(1);
  await waitFor('node2 included again at lag 3', async () => (await upstreamOf(evmux, 'node2')).usable, 3_000);
  assert.equal((await upstreamOf(evmux, 'node2')).lag, 3);
  await callsSucceed(evmux, 30, 3, 'eth_getBalance', oldBlock);
  assert.ok(requests(laggard, 'eth_getBalance') > before + 3, 'calls reach it again');
});

test('a node that claims a block it cannot serve (mid-reorg): its null goes to another node at that height', async (t) => {
  const { nodes, evmux } = await setup(t, 2, NO_PROBES);
  const [blind, good] = nodes as [FakeNode, FakeNode];
  // Both report head 100; the blind one answers null for it, as a node mid-reorg does.
  blind.handle('eth_getBlockByNumber', () => null);
  const head = `0x${(100).toString(16)}`;
  for (let i = 0; i < 6; i++) {
    const reply = await call(evmux, 'eth_getBlockByNumber', [head, false]);
    assert.equal((reply['result'] as { number?: string } | null)?.number, head, `call ${i}: ${JSON.stringify(reply)}`);
  }
  assert.ok(requests(blind, 'eth_getBlockByNumber') >= 1, 'the blind node was asked first at least once');
  assert.ok(requests(good, 'eth_getBlockByNumber') >= 6);
});

test('the only node at a height answers null for it a moment (mid-reorg) while the others are a block behind: asked again shortly, the block comes back', async (t) => {
  const { nodes, evmux } = await setup(t, 2);
  const [first, behind] = nodes as [FakeNode, FakeNode];
  first.advance(1);
  const height = `0x${(101).toString(16)}`;
  await waitFor('evmux knows head 101', async () => (await statusOf(evmux)).some((upstream) => upstream.lag === 1), 3_000);
  // The node that reported 101 has lost it for now; the other one imports it 20 ms later.
  first.handle('eth_getBlockByNumber', () => null);
  setTimeout(() => behind.advance(1), 20);
  const started = Date.now();
  const reply = await call(evmux, 'eth_getBlockByNumber', [height, false]);
  assert.equal((reply['result'] as { number?: string } | null)?.number, height, JSON.stringify(reply));
  assert.ok(Date.now() - started < 1_000, `answered after ${Date.now() - started} ms`);

  // A height no node has reported is not waited for: its null comes back at once.
  const future = Date.now();
  assert.equal((await call(evmux, 'eth_getBlockByNumber', ['0x1000', false]))['result'], null);
  assert.ok(Date.now() - future < 200, `null for an unreported height after ${Date.now() - future} ms`);
});

test('a node that sends garbage frames: its socket is dropped and the calls succeed elsewhere', async (t) => {
  const { nodes, evmux } = await setup(t, 3, NO_PROBES);
  const bad = nodes[0]!;
  const connectionsBefore = bad.stats.connectionsTotal;
  bad.mode = 'garbage';
  await callsSucceed(evmux, 30, 3);
  assert.ok(requests(bad, 'web3_clientVersion') >= 1, 'calls were sent to the garbage node');
  assert.ok((await upstreamCalls(evmux, 'node0', 'transport_error')) >= 1, 'counted as transport errors');
  const dropped = evmux.logs.filter((line) => line['upstream'] === 'node0' && line['msg'] === 'terminating upstream socket');
  assert.ok(dropped.length >= 1);
  assert.match(String(dropped[0]!['reason']), /unparseable frame/);
  await waitFor('evmux reconnects to node0', () => Promise.resolve(bad.stats.connectionsTotal > connectionsBefore), 3_000);
});

test('a node answering JSON-RPC errors for its own trouble: calls are retried elsewhere and probes mark it down', async (t) => {
  const { nodes, evmux } = await setup(t, 3);
  nodes[2]!.mode = 'error';
  await callsSucceed(evmux, 30, 3);
  assert.ok((await upstreamCalls(evmux, 'node2', 'rpc_error')) >= 1, 'node2 was tried and answered errors');
  await waitFor('node2 marked down by failing probes', async () => !(await upstreamOf(evmux, 'node2')).usable, 3_000);
});

test('circuit breaker: opens after consecutive timeouts, a failed half-open trial reopens it, a good one closes it', async (t) => {
  const openMs = 800;
  const { nodes, evmux } = await setup(t, 2, { ...NO_PROBES, requestTimeoutMs: 200, breaker: { failureThreshold: 3, openMs, halfOpenTrials: 1 } });
  const flaky = nodes[1]!;
  flaky.mode = 'hang';
  const breakerLog = (): string[] =>
    evmux.logs.filter((line) => line['upstream'] === 'node1' && line['msg'] === 'circuit breaker state changed').map((line) => String(line['breaker']));

  // Two calls at a time: the node that is not busy with the first takes the second, so each pair
  // meets the hung node once (one at a time, its timeouts would make it the slow node, left alone).
  for (let i = 0; i < 6 && breakerLog().length === 0; i++) await callsSucceed(evmux, 2, 2);
  assert.deepEqual(breakerLog(), ['open']);
  assert.equal(requests(flaky, 'web3_clientVersion'), 3, 'opened after exactly failureThreshold timeouts');
  const status = await upstreamOf(evmux, 'node1');
  assert.equal(status.breaker, 'open');
  assert.equal(status.usable, false);
  const openedAt = Date.now();
  await callsSucceed(evmux, 10, 2);
  assert.equal(requests(flaky, 'web3_clientVersion'), 3, 'no call reaches it while open');

  // After openMs one trial goes through; it times out and the breaker opens again.
  await waitFor('half-open', async () => (await upstreamOf(evmux, 'node1')).breaker === 'half-open', openMs + 1_500);
  assert.ok(Date.now() - openedAt >= openMs - 50, 'not before openMs');
  await callsSucceed(evmux, 6, 2);
  assert.equal(requests(flaky, 'web3_clientVersion'), 4, 'exactly one trial call in half-open');
  assert.deepEqual(breakerLog(), ['open', 'half-open', 'open']);

  // The node recovers: the next trial succeeds and the breaker closes.
  flaky.mode = 'normal';
  await waitFor('half-open again', async () => (await upstreamOf(evmux, 'node1')).breaker === 'half-open', openMs + 1_500);
  await callsSucceed(evmux, 4, 2);
  assert.deepEqual(breakerLog(), ['open', 'half-open', 'open', 'half-open', 'closed']);
  assert.equal((await upstreamOf(evmux, 'node1')).usable, true);
  const trialsDone = requests(flaky, 'web3_clientVersion');
  await callsSucceed(evmux, 40, 4);
  assert.ok(requests(flaky, 'web3_clientVersion') >= trialsDone + 5, 'it takes calls again');
});

const RAW_TX: `0x${string}` = `0x02${'ab'.repeat(60)}`;

test('eth_sendRawTransaction: retried on another node, never twice on one, "already known" there counts as success', async (t) => {
  const { nodes, evmux } = await setup(t, 3, { ...NO_PROBES, requestTimeoutMs: 300, retry: { maxAttempts: 6 } });
  const hash = keccak256(RAW_TX);
  const sends = (): number[] => nodes.map((node) => requests(node, 'eth_sendRawTransaction'));

  // The first node to get it fails with node trouble, yet may have kept it: the next says "already known".
  let first = true;
  for (const node of nodes) {
    node.handle('eth_sendRawTransaction', () => {
      if (!first) throw new FakeRpcError(-32000, 'already known');
      first = false;
      throw new FakeRpcError(-32603, 'internal error: try again later');
    });
  }
  const reply = await call(evmux, 'eth_sendRawTransaction', [RAW_TX]);
  assert.deepEqual(reply['result'], hash);
  assert.deepEqual([...sends()].sort(), [0, 1, 1], 'two nodes, once each');

  // Every node times out: each is tried once even though maxAttempts would allow six.
  for (const node of nodes) node.mode = 'hang';
  const before = sends();
  const failed = await call(evmux, 'eth_sendRawTransaction', [RAW_TX]);
  const error = failed['error'] as { code: number; message: string };
  assert.equal(error.code, -32050);
  assert.match(error.message, /^eth_sendRawTransaction: no node answered \(last error EVMUX_TIMEOUT: .*\), and a node may have taken it: look for transaction 0x[0-9a-f]{64} \(eth_getTransactionByHash\) before sending it again$/);
  assert.deepEqual(sends().map((n, i) => n - before[i]!), [1, 1, 1]);

  // The caller's own mistake is answered by the first node and not sent anywhere else.
  for (const node of nodes) {
    node.mode = 'normal';
    node.handle('eth_sendRawTransaction', () => {
      throw new FakeRpcError(-32000, 'nonce too low');
    });
  }
  const mid = sends();
  const rejected = await call(evmux, 'eth_sendRawTransaction', [RAW_TX]);
  assert.deepEqual(rejected['error'], { code: -32000, message: 'nonce too low' });
  assert.equal(sends().reduce((sum, n, i) => sum + n - mid[i]!, 0), 1);
});

/** An answer that never comes: the node took the call and hangs on it. */
const never = (): Promise<never> => new Promise(() => undefined);

test('eth_sendRawTransaction: after a node timed out, a taken nonce on the next counts as success when that node has this very transaction', async (t) => {
  const { nodes, evmux } = await setup(t, 2, { ...NO_PROBES, requestTimeoutMs: 300, breaker: { failureThreshold: 1000 } });
  const hash = keccak256(RAW_TX);
  const nonceTaken = { code: -32000, message: 'nonce too low: next nonce 5, tx nonce 4' };
  let first = true;
  let known = true;
  for (const node of nodes) {
    node.handle('eth_sendRawTransaction', () => {
      if (!first) throw new FakeRpcError(nonceTaken.code, nonceTaken.message);
      first = false;
      // The first node passes the transaction on and it is mined, but its answer never comes.
      return never();
    });
    node.handle('eth_getTransactionByHash', (params) => (known && params[0] === hash ? { hash, nonce: '0x4', blockNumber: '0x9' } : null));
  }
  const lookups = (): number => nodes.reduce((sum, node) => sum + requests(node, 'eth_getTransactionByHash'), 0);

  const reply = await call(evmux, 'eth_sendRawTransaction', [RAW_TX]);
  assert.equal(reply['result'], hash, JSON.stringify(reply));
  assert.equal(lookups(), 1, 'the node that refused it was asked for it by hash');

  // The nonce was taken by another transaction: the node's error stands.
  first = true;
  known = false;
  const refused = await call(evmux, 'eth_sendRawTransaction', [RAW_TX]);
  assert.deepEqual(refused['error'], nonceTaken);
  assert.equal(lookups(), 2);

  // Said by the first node asked, it is the caller's own word on its transaction: no lookup.
  first = false;
  const direct = await call(evmux, 'eth_sendRawTransaction', [RAW_TX]);
  assert.deepEqual(direct['error'], nonceTaken);
  assert.equal(lookups(), 2);
});

test('eth_sendRawTransactionSync and Conditional go to each node once, with their params as sent', async (t) => {
  const { nodes, evmux } = await setup(t, 3, { ...NO_PROBES, requestTimeoutMs: 300, retry: { maxAttempts: 6 }, breaker: { failureThreshold: 1000 } });
  const seen: unknown[] = [];
  for (const node of nodes) {
    node.handle('eth_sendRawTransactionSync', (params) => {
      seen.push(params);
      return never();
    });
  }
  const reply = await call(evmux, 'eth_sendRawTransactionSync', [RAW_TX, 2000]);
  assert.equal((reply['error'] as { code: number }).code, -32050, JSON.stringify(reply));
  assert.deepEqual(nodes.map((node) => requests(node, 'eth_sendRawTransactionSync')), [1, 1, 1], 'each node once, though six attempts were allowed');
  assert.deepEqual(seen, [[RAW_TX, 2000], [RAW_TX, 2000], [RAW_TX, 2000]]);

  const options = { knownAccounts: {} };
  for (const node of nodes) node.handle('eth_sendRawTransactionConditional', (params) => (params[0] === RAW_TX && JSON.stringify(params[1]) === JSON.stringify(options) ? keccak256(RAW_TX) : null));
  const conditional = await call(evmux, 'eth_sendRawTransactionConditional', [RAW_TX, options]);
  assert.equal(conditional['result'], keccak256(RAW_TX));
  const bad = await call(evmux, 'eth_sendRawTransactionConditional', [{ raw: RAW_TX }]);
  assert.match((bad['error'] as { message: string }).message, /eth_sendRawTransactionConditional expects one 0x-prefixed hex string of signed transaction bytes as its first parameter/);
});

test('other writes are not sent again once a node may have got them; reads failing the same way are', async (t) => {
  const { nodes, evmux } = await setup(t, 2, { ...NO_PROBES, requestTimeoutMs: 300, retry: { maxAttempts: 3 }, breaker: { failureThreshold: 1000 } });
  const sent = (method: string): number => nodes.reduce((sum, node) => sum + requests(node, method), 0);
  const tx = { from: '0x00000000000000000000000000000000000000aa', to: '0x00000000000000000000000000000000000000bb', value: '0x1' };
  for (const node of nodes) {
    node.handle('eth_sendTransaction', never);
    node.handle('eth_getTransactionCount', never);
  }

  // The node signs and sends it itself: a second node would send a second transaction.
  const reply = await call(evmux, 'eth_sendTransaction', [tx]);
  const error = reply['error'] as { code: number; message: string };
  assert.equal(error.code, -32050);
  assert.match(error.message, /^eth_sendTransaction: node\d: eth_sendTransaction timed out after 300 ms \(EVMUX_TIMEOUT\); not sent to another node, since this one may have carried it out/);
  assert.equal(sent('eth_sendTransaction'), 1);

  // A read that times out the same way is tried on the other node.
  await call(evmux, 'eth_getTransactionCount', [tx.from, 'pending']);
  assert.ok(sent('eth_getTransactionCount') >= 2, `a read was sent ${sent('eth_getTransactionCount')} times`);

  // A node's error to a write is its answer, even one that has a read retried elsewhere.
  for (const node of nodes) {
    node.handle('eth_sendTransaction', () => {
      throw new FakeRpcError(-32603, 'internal error');
    });
  }
  const refused = await call(evmux, 'eth_sendTransaction', [tx]);
  assert.deepEqual(refused['error'], { code: -32603, message: 'internal error' });
  assert.equal(sent('eth_sendTransaction'), 2);
});

test("eth_sendTransaction tried again off the client's writer node makes that node the writer: a burst goes to one node", async (t) => {
  // node0 takes one call at a time and queues none: a send it cannot take never leaves evmux, and
  // is tried on another node.
  const nodes = await Promise.all([0, 1, 2].map(() => FakeNode.start({ seed: 'faults' })));
  t.after(() => Promise.all(nodes.map((node) => node.close())));
  const evmux = await startGateway(
    nodes.map((node, index) => ({ name: `node${index}`, url: node.url, ...(index === 0 ? { maxConcurrency: 1, maxQueue: 0 } : {}) })),
    { ...NO_PROBES, breaker: { failureThreshold: 1000 }, subscriptions: { sessionKey: { source: 'query', name: 'key' } } },
  );
  t.after(() => evmux.close());
  await waitFor('every node usable', async () => (await statusOf(evmux)).every((upstream) => upstream.usable), 5_000);
  for (const node of nodes) {
    node.handle('eth_sendTransaction', async () => {
      await sleep(100);
      return `0x${'77'.repeat(32)}`;
    });
  }
  const tx = { from: '0x00000000000000000000000000000000000000aa', to: '0x00000000000000000000000000000000000000bb', value: '0x1' };
  const post = async (key: string, body: unknown): Promise<unknown> =>
    (await fetch(`${evmux.httpUrl}?key=${key}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).json();
  const send = (id: number) => ({ jsonrpc: '2.0', id, method: 'eth_sendTransaction', params: [tx] });

  // A client whose first send went to node0: node0 is its writer node.
  let key = '';
  for (let i = 0; key === '' && i < 12; i++) {
    const before = requests(nodes[0]!, 'eth_sendTransaction');
    await post(`k${i}`, send(0));
    if (requests(nodes[0]!, 'eth_sendTransaction') > before) key = `k${i}`;
  }
  assert.notEqual(key, '', 'no client got node0 as its writer node');
  // Its pending nonce is read there, and holds node0's one slot.
  nodes[0]!.handle('eth_getTransactionCount', never);
  // Never answered: it fails when evmux closes at the end.
  void post(key, { jsonrpc: '2.0', id: 9, method: 'eth_getTransactionCount', params: [tx.from, 'pending'] }).catch(() => undefined);
  await waitFor('node0 busy', async () => requests(nodes[0]!, 'eth_getTransactionCount') === 1, 2_000);

  const before = nodes.map((node) => requests(node, 'eth_sendTransaction'));
  const replies = (await post(key, [1, 2, 3, 4].map(send))) as Array<{ result?: string }>;
  assert.deepEqual(replies.map((reply) => typeof reply.result), ['string', 'string', 'string', 'string'], JSON.stringify(replies));
  const taken = nodes.map((node, index) => requests(node, 'eth_sendTransaction') - before[index]!);
  assert.equal(taken[0], 0, `node0 took ${taken[0]}`);
  assert.ok(taken.includes(4), `the four sends spread over the other nodes: ${JSON.stringify(taken)}`);
});

test('an eth_subscribe a node answers after its timeout is unsubscribed there: no subscription is left that nobody reads', async (t) => {
  const { nodes, evmux } = await setup(t, 1, { ...NO_PROBES, requestTimeoutMs: 300 });
  const node = nodes[0]!;
  const made: string[] = [];
  const undone: unknown[] = [];
  node.handle('eth_subscribe', async () => {
    await sleep(600);
    const id = `0x${(made.length + 1).toString(16).padStart(32, 'c')}`;
    made.push(id);
    return id;
  });
  node.handle('eth_unsubscribe', (params) => {
    undone.push(params[0]);
    return true;
  });
  const probe = await Probe.open(evmux.wsUrl, t);
  const answer = await probe.request('eth_subscribe', ['logs', { address: '0x00000000000000000000000000000000000000aa' }], 5_000);
  assert.ok(answer['error'] !== undefined, `the subscribe timed out: ${JSON.stringify(answer)}`);
  await waitFor('every late subscription undone', async () => made.length > 0 && made.every((id) => undone.includes(id)), 5_000);
  await sleep(300);
  assert.deepEqual(undone, made, 'each once');
});

test("a filter whose session's node fails under its eth_newBlockFilter is made on another node", async (t) => {
  const { nodes, evmux } = await setup(t, 2, { ...NO_PROBES, requestTimeoutMs: 300, breaker: { failureThreshold: 1000 } });
  let made = 0;
  for (const node of nodes) node.handle('eth_newBlockFilter', () => `0x${(++made).toString(16)}`);
  const holderOf = (id: unknown): number => decodeFilterId(id).upstreamIndex;
  const first = await call(evmux, 'eth_newBlockFilter');
  const owner = holderOf(first['result']);
  nodes[owner]!.mode = 'hang';
  const second = await call(evmux, 'eth_newBlockFilter');
  assert.equal(typeof second['result'], 'string', JSON.stringify(second));
  assert.equal(holderOf(second['result']), 1 - owner, 'made on the other node');
  assert.equal(requests(nodes[owner]!, 'eth_newBlockFilter'), 1, 'its head read timed out: the filter was not asked of the hung node too');
});

test('a node that counts its filter ids from 1 again after a restart: a new filter given a kept filter\'s id gets another, and the kept one is made again', async (t) => {
  const { nodes, evmux } = await setup(t, 1, NO_PROBES);
  const node = nodes[0]!;
  // Nethermind's way: ids from a counter. Each filter reports which one it is.
  let count = 0;
  let made = 0;
  let filters = new Map<string, string>();
  node.handle('eth_newPendingTransactionFilter', () => {
    const id = `0x${(++count).toString(16)}`;
    filters.set(id, `filter ${++made}`);
    return id;
  });
  node.handle('eth_getFilterChanges', (params) => {
    const label = filters.get(String(params[0]));
    if (label === undefined) throw new FakeRpcError(-32000, 'filter not found');
    return [label];
  });
  node.handle('eth_uninstallFilter', (params) => filters.delete(String(params[0])));

  const first = String((await call(evmux, 'eth_newPendingTransactionFilter'))['result']);
  assert.deepEqual((await call(evmux, 'eth_getFilterChanges', [first]))['result'], ['filter 1']);
  // A restart: the node forgets its filters and counts from 1 again.
  count = 0;
  filters = new Map();
  node.dropConnections();
  await waitFor('the node back', async () => (await statusOf(evmux))[0]!.usable && (await statusOf(evmux))[0]!.connected, 5_000);
  const second = String((await call(evmux, 'eth_newPendingTransactionFilter'))['result']);
  assert.notEqual(second, first, 'the new filter gets an id of its own');
  assert.deepEqual((await call(evmux, 'eth_getFilterChanges', [second]))['result'], ['filter 2']);
  assert.deepEqual((await call(evmux, 'eth_getFilterChanges', [first]))['result'], [], 'the first is made again: nothing of the second\'s');
  assert.deepEqual((await call(evmux, 'eth_getFilterChanges', [first]))['result'], ['filter 3']);
  assert.deepEqual((await call(evmux, 'eth_getFilterChanges', [second]))['result'], ['filter 2']);
  assert.equal((await call(evmux, 'eth_uninstallFilter', [first]))['result'], true);
  assert.deepEqual((await call(evmux, 'eth_getFilterChanges', [second]))['result'], ['filter 2'], 'uninstalling the first leaves the second');
  // The first's id names the node filter the second holds now: it is gone, not the second's.
  const gone = (await call(evmux, 'eth_getFilterChanges', [first]))['error'] as { code: number; message: string } | undefined;
  assert.deepEqual(gone, { code: -32000, message: 'filter not found' });
  assert.equal((await call(evmux, 'eth_uninstallFilter', [first]))['result'], false);
  assert.deepEqual((await call(evmux, 'eth_getFilterChanges', [second]))['result'], ['filter 2']);
});

test('a node that takes the WebSocket handshake and closes at once (an API key over quota): reconnects back off, and the streak is logged once', async (t) => {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  let connections = 0;
  server.on('connection', (socket) => {
    connections++;
    socket.close(1013, 'over quota');
  });
  await new Promise<void>((resolve) => server.once('listening', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as { port: number };
  const evmux = await startGateway([`ws://127.0.0.1:${port}`], { ...NO_PROBES, reconnect: { baseMs: 100, maxMs: 10_000 } }, { waitReady: false });
  t.after(() => evmux.close());
  await sleep(3000);
  // Before: the backoff started over at every open, 35 connections a second on each socket.
  assert.ok(connections >= 2 && connections <= 24, `${connections} connections in 3 s`);
  const lines = (message: string): number => evmux.logs.filter((line) => line['msg'] === message && line['level'] !== 20).length;
  assert.equal(lines('upstream socket closed'), 0, 'closes right after opening are failed connects');
  assert.ok(lines('upstream connect failed') <= 2, `${lines('upstream connect failed')} connect-failed lines: one per socket's streak`);
  assert.ok(lines('upstream socket open') <= 2, `${lines('upstream socket open')} open lines: the streak's later ones are debug`);
});

// The node's call socket and its subscriptions' own socket reconnect apart; the subscriptions wait
// a moment for their own rather than ride the call socket and move again, with a gap, when it opens.
test('pending transactions: a move back to a node that returned waits for its stream to be live, so nothing every node saw is missed', async (t) => {
  const { nodes, evmux } = await setup(t, 2, { health: { probeIntervalMs: 200 }, subscriptions: { holdDownMs: 500 } });
  const client = await Probe.open(evmux.wsUrl, t);
  const id = (await client.request('eth_subscribe', ['newPendingTransactions']))['result'];
  const got: string[] = [];
  client.ws.on('message', (data) => {
    const frame = JSON.parse(String(data)) as { params?: { subscription?: unknown; result?: unknown } };
    if (frame.params !== undefined && frame.params.subscription === id) got.push(String(frame.params.result));
  });
  const pendingOn = async (name: string): Promise<number> => (await evmux.metric('evmux_upstream_subscriptions', { upstream: name, kind: 'newPendingTransactions' })) ?? 0;
  let home = -1;
  await waitFor('the stream is live', async () => {
    home = (await pendingOn('node0')) === 1 ? 0 : (await pendingOn('node1')) === 1 ? 1 : -1;
    return home >= 0;
  }, 5_000);
  const node = nodes[home]!;
  // Its node goes away; the client moves to the other one.
  node.acceptConnections = false;
  node.dropConnections();
  await waitFor('moved to the other node', async () => (await pendingOn(`node${1 - home}`)) === 1, 5_000);
  // Transactions every node sees, from now on, every 10 ms.
  const sent: string[] = [];
  const ticker = setInterval(() => {
    const hash = `0x${(sent.length + 1).toString(16).padStart(64, '0')}`;
    sent.push(hash);
    for (const each of nodes) each.notify('newPendingTransactions', hash);
  }, 10);
  t.after(() => clearInterval(ticker));
  // It comes back slow to answer (a remote node): the move back waits for its stream.
  node.latencyMs = 150;
  node.acceptConnections = true;
  await waitFor('moved back', async () => evmux.logs.some((line) => line['msg'] === 'subscriptions moved' && line['to'] === `node${home}`), 10_000);
  await sleep(300);
  clearInterval(ticker);
  await sleep(300);
  const missed = sent.filter((hash) => !got.includes(hash));
  assert.deepEqual(missed, [], `${missed.length} of ${sent.length} missed`);
  // For a moment both nodes' streams feed the clients: each transaction still comes once.
  assert.deepEqual(got.filter((hash, index) => got.indexOf(hash) !== index), [], 'none twice');
});

test('a node that answers in binary frames (Ganache 7) is used, and evmux writes its requests as text frames', async (t) => {
  const node = await FakeNode.start({ seed: 'faults', binaryFrames: true });
  t.after(() => node.close());
  const evmux = await startGateway([node.url]);
  t.after(() => evmux.close());
  await waitFor('the node usable', async () => (await upstreamOf(evmux, 'node0')).usable, 5_000);
  const probe = await Probe.open(evmux.wsUrl, t);
  probe.send({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] });
  const answer = await probe.waitFor((frame) => (frame.json as { id?: unknown }).id === 1, 2_000);
  assert.deepEqual(answer.json, { jsonrpc: '2.0', id: 1, result: '0x7a69' });
  assert.ok(requests(node, 'eth_chainId') >= 1);
  assert.equal(node.stats.binaryMessages, 0, 'no request in a binary frame');
});
