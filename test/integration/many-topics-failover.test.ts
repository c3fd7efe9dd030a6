/**
 * 300 logs subscriptions with distinct filters (300 upstream subscriptions) on one node of a
 * 2-node anvil devnet, whose request slots are few (16 at once, 32 queued): the node is killed and
 * every topic catches up on the other node at once, then moves back after the restart. The catch-up
 * calls wait their turn instead of overflowing the node's queue, so no stream step fails there
 * (only on the node as it dies) and every stream holds every log once, in order.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { STATUS_LIST_LIMIT } from '../../src/subs/subscription-status.js';
import { startGateway } from '../support/gateway.js';
import { canonicalHashes, canonicalLogs } from '../support/node-rpc.js';
import { logProblems, sleep, StreamClient, waitUntil } from '../support/stream-recorder.js';

const CONNECTIONS = 3;
const PER_CONNECTION = 100;

interface StatusShape {
  upstreams: Array<{ name: string; usable: boolean; subscriptions: { topicCount: number; streamCount: number; topics: unknown[]; streams: unknown[]; kinds: Record<string, unknown> } | null }>;
}

test('300 distinct logs topics fail over and back without a failed step, a lost or a repeated log', async (t) => {
  const devnet = await LockstepDevnet.start({ nodes: 2, blockTimeMs: 250, traffic: true });
  t.after(() => devnet.close());
  const slots = { maxConcurrency: 16, maxQueue: 32 };
  const evmux = await startGateway(
    devnet.nodes.map((node, i) => ({ name: `node${i}`, url: node.wsUrl, ...slots })),
    { limits: { maxSubscriptionsPerConnection: PER_CONNECTION } },
    { logLevel: 'warn' },
  );
  t.after(() => evmux.close());
  const address = devnet.emitterAddress;
  const subscriptions: Array<{ client: StreamClient; id: string; from: bigint }> = [];
  for (let c = 0; c < CONNECTIONS; c++) {
    const client = await StreamClient.open(evmux.wsUrl, `c${c}`);
    t.after(() => client.close());
    // Each filter its own: the emitter's event, or a topic nobody emits.
    const filters = Array.from({ length: PER_CONNECTION }, (_, i) => ({ address, topics: [[devnet.emitterTopic, `0x${(c * PER_CONNECTION + i + 1).toString(16).padStart(64, '0')}`]] }));
    const ids = await Promise.all(filters.map((filter) => client.subscribe(['logs', filter])));
    // Logs of the block current at subscribe time may or may not come; from the next one on, all.
    const from = BigInt(devnet.blockNumber) + 2n;
    for (const id of ids) subscriptions.push({ client, id, from });
  }
  await sleep(1000);

  const status = JSON.parse((await evmux.get('/status')).body) as StatusShape;
  const pinned = status.upstreams.findIndex((upstream) => (upstream.subscriptions?.topicCount ?? 0) > 0);
  assert.equal(status.upstreams[pinned]?.subscriptions?.topicCount, CONNECTIONS * PER_CONNECTION, 'one node holds every topic');
  // /status lists the topics with the most clients, STATUS_LIST_LIMIT of them, and every one on request.
  const listed = status.upstreams[pinned]!.subscriptions!;
  assert.deepEqual([listed.topics.length, listed.streams.length], [STATUS_LIST_LIMIT, STATUS_LIST_LIMIT]);
  assert.deepEqual(listed.kinds['logs'], { topics: CONNECTIONS * PER_CONNECTION, clients: CONNECTIONS * PER_CONNECTION, streams: CONNECTIONS * PER_CONNECTION });
  const all = (JSON.parse((await evmux.get('/status?topics=all')).body) as StatusShape).upstreams[pinned]!.subscriptions!;
  // Its streams: one per filter, and evmux's own newHeads.
  assert.deepEqual([all.topics.length, all.streams.length, listed.streamCount], [CONNECTIONS * PER_CONNECTION, CONNECTIONS * PER_CONNECTION + 1, CONNECTIONS * PER_CONNECTION + 1]);
  const usable = async (): Promise<boolean> => (JSON.parse((await evmux.get('/status')).body) as StatusShape).upstreams[pinned]!.usable;

  await devnet.kill(pinned);
  await waitUntil('the node marked down', async () => !(await usable()), 5000);
  await sleep(2000);
  await devnet.restart(pinned);
  await waitUntil('the node usable again', usable, 15_000);
  // Hold-down, then the move back and its catch-up.
  await sleep(3000);

  const end = BigInt(devnet.blockNumber) - 1n;
  const other = devnet.nodes[1 - pinned]!.httpUrl;
  const hashes = new Set((await canonicalHashes(other, 0n, end)).values());
  const logs = await canonicalLogs(other, { address }, subscriptions[0]!.from, end);
  assert.ok(logs.length >= 10, `the devnet emitted logs (${logs.length})`);
  await waitUntil('every stream at the last log', () => subscriptions.every(({ client, id }) => client.logs(id).some((log) => log.blockNumber >= logs.at(-1)!.blockNumber)), 10_000);
  const problems = subscriptions.flatMap(({ client, id, from }) =>
    logProblems(client.logs(id), logs.filter((log) => log.blockNumber >= from), hashes, from, end).map((problem) => `${client.label} ${id}: ${problem}`),
  );
  assert.deepEqual(problems.slice(0, 10), [], `${problems.length} problems`);
  // Steps on the killed node may fail as it dies; none may fail for want of the nodes' slots.
  const failedSteps = evmux.logs.filter(
    (line) => line['component'] === 'subscriptions' && /failed/.test(String(line['msg'])) && (line['upstream'] !== `node${pinned}` || /queue|queued/.test(String(line['err']))),
  );
  assert.deepEqual(failedSteps.slice(0, 3).map((line) => `${String(line['upstream'])} ${String(line['msg'])}: ${String(line['err'])}`), [], `${failedSteps.length} failed stream steps`);
});
