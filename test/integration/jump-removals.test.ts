/**
 * A reorg of blocks a logs stream delivered, during an outage of every node longer than
 * subscriptions.replayMaxBlocks: when the nodes are back the stream jumps to the head (a bound),
 * and the logs it had sent from the blocks the reorg took come again with removed: true, before
 * the head's logs. They were never undone: a jump listed no orphaned blocks unless its walk had
 * passed their heights. Real anvil nodes behind relays that cut them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { mineWithEmits } from '../support/client-fixture.js';
import { CutRelay } from '../support/cut-relay.js';
import { startGateway } from '../support/gateway.js';
import { canonicalHashes } from '../support/node-rpc.js';
import { sumSamples } from '../support/prom-text.js';
import { logProblems, sleep, StreamClient, waitUntil } from '../support/stream-recorder.js';

const REPLAY_MAX_BLOCKS = 8;
/** Every node refused for this long: the blocks of the outage are mined well within it. */
const OUTAGE_MS = 4000;
/** A new stream is anchored in its topic's queue right after its reply: let that happen first. */
const START_SETTLE_MS = 300;

test('a jump past replayMaxBlocks over a reorg of delivered blocks sends their logs again with removed: true', { timeout: 60_000 }, async (t) => {
  const devnet = await LockstepDevnet.start({ nodes: 2, blockTimeMs: 0, traffic: false });
  t.after(() => devnet.close());
  const relays = await Promise.all(devnet.nodes.map((node) => CutRelay.start(node.port)));
  t.after(() => Promise.all(relays.map((relay) => relay.close())));
  const evmux = await startGateway(
    relays.map((relay) => `ws://127.0.0.1:${relay.port}/`),
    { subscriptions: { replayMaxBlocks: REPLAY_MAX_BLOCKS } },
  );
  t.after(() => evmux.close());
  const mine = (blocks: number): Promise<void> => mineWithEmits(devnet, blocks);
  await mine(3);

  const client = await StreamClient.open(evmux.wsUrl, 'indexer');
  t.after(() => client.close());
  const heads = await client.subscribe(['newHeads']);
  const logs = await client.subscribe(['logs', { address: devnet.emitterAddress }]);
  await client.first(heads);
  await sleep(START_SETTLE_MS);
  await mine(5);
  const delivered = BigInt(devnet.blockNumber);
  await waitUntil('the logs up to the tip', () => client.logs(logs).some((log) => log.blockNumber === delivered), 5000);

  // Every node away; meanwhile the last 3 delivered blocks are replaced, and the chain grows past the bound.
  for (const relay of relays) relay.cut(OUTAGE_MS);
  await devnet.reorg(3);
  await mine(REPLAY_MAX_BLOCKS + 4);
  const end = BigInt(devnet.blockNumber);
  await waitUntil('the stream at the head', () => client.tip(heads) === end, OUTAGE_MS + 10_000);
  await waitUntil('the head\'s logs', () => client.logs(logs).some((log) => log.blockNumber === end), 5000);

  const metrics = (await evmux.get('/metrics')).body;
  assert.ok(sumSamples(metrics, 'evmux_replay_truncations_total', { kind: 'logs' }) >= 1, 'the logs stream jumped');
  const canonical = new Set((await canonicalHashes(devnet.nodes[0]!.httpUrl, 0n, end)).values());
  const received = client.logs(logs);
  const orphanedLive = received.filter((log) => !log.removed && !canonical.has(log.blockHash));
  assert.equal(orphanedLive.length, 3, 'a log of each replaced block was delivered before the outage');
  // Every log of a replaced block removed once, in order: no completeness check (the jump skipped blocks).
  assert.deepEqual(logProblems(received, [], canonical, 0n, end), []);
  const firstRemoval = received.findIndex((log) => log.removed);
  const headLog = received.findIndex((log) => log.blockNumber === end);
  assert.ok(firstRemoval >= 0 && firstRemoval < headLog, 'the removals before the head\'s logs');
});
