/**
 * What one client's calls cost a node does not take that node out of rotation for everyone. A call
 * that times out while its node goes on answering other calls is slow, not a sign of a failing
 * node; an answer over limits.maxAnswerBytes is the asker's. Neither counts against the node's
 * circuit breaker. A node that answers nothing at all still does (fake-node-faults.test.ts), even
 * while it trickles an endless message that the heartbeat and the probes take for a node busy sending.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { FakeNode } from '../support/fake-node.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { Probe } from '../support/ws-probe.js';

const TIMEOUT_MS = 400;

async function setup(t: TestContext, overrides: Parameters<typeof startGateway>[1] = {}): Promise<{ nodes: FakeNode[]; evmux: TestGateway }> {
  const nodes = await Promise.all([0, 1].map(() => FakeNode.start({ seed: 'blame' })));
  t.after(() => Promise.all(nodes.map((node) => node.close())));
  const evmux = await startGateway(
    nodes.map((node) => node.url),
    { requestTimeoutMs: TIMEOUT_MS, breaker: { failureThreshold: 3, openMs: 5_000 }, ...overrides },
  );
  t.after(() => evmux.close());
  return { nodes, evmux };
}

async function post(evmux: TestGateway, method: string, params: unknown[], id: number): Promise<Record<string, unknown>> {
  const response = await fetch(evmux.httpUrl, { method: 'POST', body: JSON.stringify({ jsonrpc: '2.0', id, method, params }) });
  return (await response.json()) as Record<string, unknown>;
}

/** Another client's calls, one every 20 ms until `until` settles: their answers. */
async function bystander(evmux: TestGateway, until: Promise<unknown>): Promise<Array<Record<string, unknown>>> {
  let done = false;
  void until.finally(() => (done = true));
  const answers: Array<Record<string, unknown>> = [];
  for (let id = 0; !done; id++) {
    answers.push(await post(evmux, 'eth_blockNumber', [], id));
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return answers;
}

function breakerChanges(evmux: TestGateway): unknown[] {
  return evmux.logs.filter((line) => line['msg'] === 'circuit breaker state changed').map((line) => [line['upstream'], line['breaker']]);
}

test('calls that outlast their timeout on nodes that answer everything else: the calls fail, the nodes stay in rotation', async (t) => {
  const { nodes, evmux } = await setup(t);
  for (const node of nodes) {
    node.handle('eth_getLogs', async () => {
      await new Promise((resolve) => setTimeout(resolve, TIMEOUT_MS * 3));
      return [];
    });
  }
  // Six heavy calls at once, three rounds: each meets both nodes and times out on each.
  const heavy = (async () => {
    for (let round = 0; round < 3; round++) {
      const answers = await Promise.all([1, 2, 3, 4, 5, 6].map((id) => post(evmux, 'eth_getLogs', [{ fromBlock: '0x0' }], id)));
      for (const answer of answers) assert.match(JSON.stringify(answer['error']), /timed out after 400 ms/, JSON.stringify(answer));
    }
  })();
  const seen = await bystander(evmux, heavy);
  await heavy;
  assert.ok(seen.length >= 20, `${seen.length} bystander calls`);
  assert.deepEqual(seen.filter((answer) => answer['result'] === undefined), [], `every bystander call answered; logs ${JSON.stringify(evmux.logs.filter((l) => l['level'] !== 30).slice(0, 12))}`);
  assert.deepEqual(breakerChanges(evmux), [], 'no breaker opened');
  for (const name of ['node0', 'node1']) assert.equal(await evmux.metric('evmux_upstream_up', { upstream: name }), 1, name);
});

test('answers over limits.maxAnswerBytes, each closing its socket: the askers get errors, the nodes stay in rotation', async (t) => {
  const { nodes, evmux } = await setup(t, { limits: { maxAnswerBytes: 65_536 } });
  const log = { address: `0x${'11'.repeat(20)}`, topics: [], data: `0x${'ab'.repeat(40_000)}`, blockNumber: '0x1', logIndex: '0x0' };
  for (const node of nodes) node.handle('eth_getLogs', () => [log]);
  const heavy = (async () => {
    for (let round = 0; round < 4; round++) {
      const answers = await Promise.all([1, 2, 3].map((id) => post(evmux, 'eth_getLogs', [{ fromBlock: '0x0' }], id)));
      // The first answer closes the socket under the others, which fail as on any close.
      const codes = answers.map((answer) => (answer['error'] as { code?: unknown } | undefined)?.code);
      assert.ok(codes.includes(-32602), `codes ${JSON.stringify(answers)}`);
      for (const code of codes) assert.ok(code === -32602 || code === -32050, `codes ${JSON.stringify(codes)}`);
    }
  })();
  const seen = await bystander(evmux, heavy);
  await heavy;
  assert.deepEqual(seen.filter((answer) => answer['result'] === undefined), [], `every bystander call answered; logs ${JSON.stringify(evmux.logs.filter((l) => l['level'] !== 30).slice(0, 12))}`);
  assert.deepEqual(breakerChanges(evmux), [], 'no breaker opened');
});

test('a client with more slow calls than a node has room for does not hold the others behind its own', async (t) => {
  const node = await FakeNode.start({ seed: 'blame-queue' });
  t.after(() => node.close());
  const slowMs = 600;
  node.handle('eth_getLogs', async () => {
    await new Promise((resolve) => setTimeout(resolve, slowMs));
    return [];
  });
  const evmux = await startGateway([{ name: 'node0', url: node.url, maxConcurrency: 2, maxQueue: 6 }], {
    requestTimeoutMs: 10_000,
    subscriptions: { sessionKey: { source: 'query', name: 'session' } },
  });
  t.after(() => evmux.close());
  const heavy = await Probe.open(`${evmux.wsUrl}?session=heavy`, t);
  for (let id = 1; id <= 20; id++) heavy.send(JSON.stringify({ jsonrpc: '2.0', id, method: 'eth_getLogs', params: [{ fromBlock: '0x0' }] }));
  await new Promise((resolve) => setTimeout(resolve, 100));

  // Two slots busy with the heavy client's calls and its others filling the queue: first come, first
  // served, this call waited for all of them or was refused.
  const started = performance.now();
  const response = await fetch(`${evmux.httpUrl}?session=light`, { method: 'POST', body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_blockNumber', params: [] }) });
  const answer = (await response.json()) as Record<string, unknown>;
  const took = performance.now() - started;
  assert.equal(typeof answer['result'], 'string', JSON.stringify(answer));
  assert.ok(took < slowMs * 1.8, `answered in ${Math.round(took)} ms: the next free slot, not the heavy client's turn after its ${20 - 2} others`);
});

test('a node that answers no call while it trickles an endless message still has its breaker opened: a message under way is not an answer', async (t) => {
  const { nodes, evmux } = await setup(t);
  const bad = nodes[1]!;
  await sleep(600); // probes have made calls on each node's call socket
  bad.mode = 'hang';
  // 4 KiB/s: enough for the heartbeat and the probes to take the node for busy sending, so only its calls' timeouts tell.
  bad.trickleEndlessMessage(4096);
  const deadline = performance.now() + 10_000;
  let id = 0;
  const opened = (): boolean => breakerChanges(evmux).some((change) => JSON.stringify(change) === '["node1","open"]');
  const worker = async (): Promise<void> => {
    while (!opened() && performance.now() < deadline) await post(evmux, 'eth_getBalance', [`0x${'11'.repeat(20)}`, 'latest'], id++);
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  assert.ok(opened(), `node1's breaker opened: ${JSON.stringify(breakerChanges(evmux))}`);
});
