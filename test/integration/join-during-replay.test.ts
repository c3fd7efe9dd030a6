/**
 * A subscription made on a node while streams moved there are still being replayed: the moved
 * streams are at an old head, the node at a newer one. The new subscription starts at the node's
 * head: its newHeads greeting is that head, and it gets no logs of the blocks the replay brings to
 * the others, which were mined before it subscribed. Once both streams deliver the same head they
 * are one again. Before, it joined the moved stream: it was sent the replayed blocks' logs, and a
 * replay step that failed got it greeted with the old head, then sent the blocks after it.
 * Real anvil nodes behind relays that cut a node and hold (then fail) the replay's header calls.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { mineWithEmits } from '../support/client-fixture.js';
import { startGateway } from '../support/gateway.js';
import { HeaderHoldRelay } from '../support/header-hold-relay.js';
import { canonicalHashes, canonicalLogs } from '../support/node-rpc.js';
import { headProblems, logProblems, pinnedUpstream, sleep, StreamClient, waitUntil } from '../support/stream-recorder.js';

/** A new logs stream is anchored in its topic's queue right after its reply: let that happen first. */
const START_SETTLE_MS = 300;
/** Blocks the moved streams miss: more than one, so their replay walks a gap (header calls by height). */
const MISSED = 5;

interface TopicStatus {
  kind: string;
  groups: number;
}

interface UpstreamStatus {
  name: string;
  head: string | null;
  subscriptions: { topics: TopicStatus[] } | null;
}

test('a subscription made while moved streams are replayed starts at the node\'s head', { timeout: 60_000 }, async (t) => {
  const devnet = await LockstepDevnet.start({ nodes: 2, blockTimeMs: 0, traffic: false });
  t.after(() => devnet.close());
  const relays = await Promise.all(devnet.nodes.map((node) => HeaderHoldRelay.start(node.wsUrl, 'byNumber')));
  t.after(() => Promise.all(relays.map((relay) => relay.close())));
  const evmux = await startGateway(relays.map((relay) => relay.url));
  t.after(() => evmux.close());
  const upstreams = async (): Promise<UpstreamStatus[]> => (JSON.parse((await evmux.get('/status')).body) as { upstreams: UpstreamStatus[] }).upstreams;
  const filter = ['logs', { address: devnet.emitterAddress }];
  await mineWithEmits(devnet, 2);

  const early = await StreamClient.open(evmux.wsUrl, 'early');
  t.after(() => early.close());
  const earlyLow = BigInt(devnet.blockNumber);
  const earlyHeads = await early.subscribe(['newHeads']);
  const earlyLogs = await early.subscribe(filter);
  await early.first(earlyHeads);
  const earlyGreeting = { low: earlyLow, high: BigInt(devnet.blockNumber) };
  await sleep(START_SETTLE_MS);
  await mineWithEmits(devnet, 1);
  const old = BigInt(devnet.blockNumber);
  await waitUntil('the first block delivered', () => early.tip(earlyHeads) === old && early.logs(earlyLogs).length === 1, 5000);

  const owner = pinnedUpstream((await evmux.get('/status')).body);
  assert.ok(owner !== undefined && owner === pinnedUpstream((await evmux.get('/status')).body, 'logs'), 'both streams on one node');
  const p = Number(owner.replace('node', ''));
  const q = 1 - p;

  // p misses the next blocks, then goes away: the streams move to q at the old head, and their
  // replay there waits on its header calls.
  devnet.hold(p);
  relays[q]!.holding = true;
  await mineWithEmits(devnet, MISSED);
  const start = BigInt(devnet.blockNumber);
  relays[p]!.cut();
  await waitUntil('the streams on q, replaying', async () => {
    const status = (await evmux.get('/status')).body;
    return pinnedUpstream(status, 'newHeads') === `node${q}` && pinnedUpstream(status, 'logs') === `node${q}` && relays[q]!.held > 0;
  }, 10_000, 50);
  await waitUntil('q known at its head', async () => (await upstreams())[q]!.head === start.toString(), 5000, 50);
  assert.equal(early.tip(earlyHeads), old, 'the moved stream is still at the old head');

  const late = await StreamClient.open(evmux.wsUrl, 'late');
  t.after(() => late.close());
  const lateHeads = await late.subscribe(['newHeads']);
  const lateLogs = await late.subscribe(filter);
  // Another client subscribing at the same head shares the late one's group, not one of its own.
  const later = await StreamClient.open(evmux.wsUrl, 'later');
  t.after(() => later.close());
  const laterHeads = await later.subscribe(['newHeads']);
  await later.subscribe(filter);
  const replaying = (await upstreams())[q]!.subscriptions!.topics;
  assert.deepEqual(replaying.map((topic) => [topic.kind, topic.groups]).sort(), [['logs', 2], ['newHeads', 2]], 'the moved group and one of those that joined at the head');
  // The replay's step fails (it is tried again later): what was queued behind it, the new
  // subscriptions' start, runs now.
  relays[q]!.fail();
  const greeting = await late.first(lateHeads);
  assert.equal(BigInt(greeting.result['number'] as string), start, 'greeted with the node\'s head, not the old head the replay starts from');
  assert.equal(BigInt((await later.first(laterHeads)).result['number'] as string), start);

  await waitUntil('the moved streams replayed', () => early.tip(earlyHeads) === start, 10_000);
  await mineWithEmits(devnet, 2);
  const end = BigInt(devnet.blockNumber);
  const logsBy = (client: StreamClient, id: string): number => client.logs(id).filter((log) => log.blockNumber === end).length;
  await waitUntil('both at the new head', () => early.tip(earlyHeads) === end && late.tip(lateHeads) === end && logsBy(early, earlyLogs) > 0 && logsBy(late, lateLogs) > 0, 10_000);
  await sleep(300);
  const before = late.logs(lateLogs).filter((log) => log.blockNumber <= start).map((log) => log.blockNumber);
  assert.deepEqual(before, [], 'no log of a block mined before the late subscription');

  const node = devnet.nodes[q]!.httpUrl;
  const canonical = await canonicalHashes(node, earlyLow, end);
  assert.deepEqual(headProblems(early.heads(earlyHeads), canonical, end, earlyGreeting), []);
  assert.deepEqual(headProblems(late.heads(lateHeads), canonical, end, { low: start, high: start }), []);
  const hashes = new Set(canonical.values());
  const earlyCanonical = await canonicalLogs(node, { address: devnet.emitterAddress }, earlyLow + 1n, end);
  assert.deepEqual(logProblems(early.logs(earlyLogs), earlyCanonical, hashes, earlyLow + 1n, end), []);
  const lateCanonical = await canonicalLogs(node, { address: devnet.emitterAddress }, start + 1n, end);
  assert.deepEqual(logProblems(late.logs(lateLogs), lateCanonical, hashes, start + 1n, end), []);

  const topics = (await upstreams())[q]!.subscriptions!.topics;
  assert.deepEqual(topics.map((topic) => [topic.kind, topic.groups]).sort(), [['logs', 1], ['newHeads', 1]], 'one stream per topic again');
});
