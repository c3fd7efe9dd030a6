/**
 * A blip that closes every node's sockets at once (a load balancer restarting, a network hiccup)
 * while calls are in flight: the sockets reconnect within milliseconds, and so must service. The
 * calls a close fails are one failure of the node's, not one each: counted per call, any close with
 * breaker.failureThreshold calls in flight opened the breaker, and every node stayed unusable for
 * breaker.openMs (5 s) after it was back. Fake nodes, since the blip must come while calls wait.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { FakeNode } from '../support/fake-node.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { sleep, waitUntil } from '../support/stream-recorder.js';

interface UpstreamStatus {
  name: string;
  usable: boolean;
  breaker: string;
}

async function statusOf(evmux: TestGateway): Promise<UpstreamStatus[]> {
  return (JSON.parse((await evmux.get('/status')).body) as { upstreams: UpstreamStatus[] }).upstreams;
}

let nextId = 1;
async function call(evmux: TestGateway, method: string): Promise<Record<string, unknown>> {
  const response = await fetch(evmux.httpUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: nextId++, method, params: [] }),
  });
  return (await response.json()) as Record<string, unknown>;
}

/** Two fake nodes of one chain and evmux in front of them, both usable. */
async function twoNodes(t: TestContext, logLevel?: string): Promise<{ nodes: FakeNode[]; evmux: TestGateway }> {
  const nodes = await Promise.all([0, 1].map(() => FakeNode.start({ seed: 'blip' })));
  t.after(() => Promise.all(nodes.map((node) => node.close())));
  const evmux = await startGateway(nodes.map((node) => node.url), {}, logLevel === undefined ? {} : { logLevel });
  t.after(() => evmux.close());
  await waitUntil('both nodes usable', async () => (await statusOf(evmux)).every((upstream) => upstream.usable), 5_000);
  return { nodes, evmux };
}

test('sockets closed under 20 calls in flight come back in milliseconds, breakers closed', async (t) => {
  const { nodes, evmux } = await twoNodes(t);

  // Three blips: whether both nodes' closes are read in one turn of evmux's loop is up to timing,
  // and that is when the calls one close failed could be tried again on the node closed beside it.
  for (let blip = 1; blip <= 3; blip++) {
    for (const node of nodes) node.latencyMs = 400;
    const inFlight = Array.from({ length: 20 }, () => call(evmux, 'eth_blockNumber'));
    await sleep(100);
    for (const node of nodes) {
      node.latencyMs = 0;
      node.dropConnections();
    }
    const blipped = await Promise.all(inFlight);
    // Each was tried again once the sockets were back, not on the node closed beside its own.
    assert.deepEqual(
      blipped.filter((reply) => reply['error'] !== undefined),
      [],
      `every call in flight in blip ${blip} answered`,
    );
    await waitUntil(`both nodes usable again after blip ${blip}`, async () => (await statusOf(evmux)).every((upstream) => upstream.usable), 3_000);
    const started = Date.now();
    const after = await Promise.all(Array.from({ length: 10 }, () => call(evmux, 'eth_blockNumber')));
    assert.deepEqual(
      after.filter((reply) => reply['error'] !== undefined),
      [],
      `every call after blip ${blip} answered`,
    );
    assert.ok(Date.now() - started < 1_000, `answered within ${Date.now() - started} ms after blip ${blip}`);
  }
  const opened = evmux.logs.filter((line) => line['msg'] === 'circuit breaker state changed' && line['breaker'] === 'open');
  assert.deepEqual(opened, [], 'no breaker opened for a blip');
});

test('calls sent on a socket while it closes: it is terminated, once, at debug (its close is the warning)', async (t) => {
  const { nodes, evmux } = await twoNodes(t, 'debug');
  nodes[0]!.closeFramesOnly();
  await sleep(50);
  // One batch: its calls go out in one tick, each finding the socket closing.
  const response = await fetch(evmux.httpUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(Array.from({ length: 20 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'eth_getBalance', params: [`0x${String(i).padStart(40, '0')}`, 'latest'] }))),
  });
  const replies = (await response.json()) as Array<Record<string, unknown>>;
  assert.equal(replies.length, 20);
  assert.deepEqual(
    replies.filter((reply) => reply['error'] !== undefined),
    [],
    'every call answered, by the other node when need be',
  );
  const terminations = evmux.logs.filter((line) => line['upstream'] === 'node0' && line['msg'] === 'terminating upstream socket');
  assert.ok(terminations.length >= 1, 'the closing socket was terminated');
  assert.ok(terminations.every((line) => line['level'] === 20), 'at debug');
  // The close itself is the warning (here a socket closed within 2 s of opening: a failed connect).
  const closes = evmux.logs.filter((line) => line['upstream'] === 'node0' && (line['msg'] === 'upstream socket closed' || line['msg'] === 'upstream connect failed'));
  assert.ok(closes.length >= 1 && closes.every((line) => line['level'] === 40), JSON.stringify(closes));
  // One per socket of node0's: its call socket and its stream socket.
  assert.ok(terminations.length <= 2, `${terminations.length} lines: ${JSON.stringify(terminations.map((line) => line['reason']))}`);
});

test('a burst of signed sends to a node whose breaker is half-open: each is sent once it lets them through', async (t) => {
  const node = await FakeNode.start({ seed: 'blip' });
  t.after(() => node.close());
  const evmux = await startGateway([node.url], { requestTimeoutMs: 150, breaker: { failureThreshold: 2, openMs: 400 } });
  t.after(() => evmux.close());
  await waitUntil('the node usable', async () => (await statusOf(evmux)).every((upstream) => upstream.usable), 5_000);
  node.mode = 'hang';
  await Promise.all(Array.from({ length: 3 }, () => call(evmux, 'eth_blockNumber')));
  node.mode = 'normal';
  await waitUntil('the breaker opened', () => Promise.resolve(evmux.logs.some((line) => line['msg'] === 'circuit breaker state changed' && line['breaker'] === 'open')), 3_000);
  await sleep(500);
  await waitUntil('the node usable again', async () => (await statusOf(evmux)).every((upstream) => upstream.usable), 5_000);
  const raws = Array.from({ length: 6 }, (_, i) => `0x02${String(i).padStart(2, '0')}${'ab'.repeat(40)}`);
  const response = await fetch(evmux.httpUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(raws.map((raw, i) => ({ jsonrpc: '2.0', id: i, method: 'eth_sendRawTransaction', params: [raw] }))),
  });
  const replies = (await response.json()) as Array<Record<string, unknown>>;
  assert.deepEqual(
    replies.filter((reply) => reply['error'] !== undefined),
    [],
    'every send of the burst went through',
  );
  assert.equal(node.stats.requests.get('eth_sendRawTransaction'), raws.length, 'each sent once');
});
