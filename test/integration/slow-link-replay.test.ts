/**
 * A newHeads replay over a link with an 80 ms round trip: every node away while 100 blocks are
 * mined, then back. The walk back fetched one parent header at a time, a round trip each: it ran
 * into subscriptions.replayMaxMs after about 40 blocks and jumped, and the client never got the
 * blocks in between. The gap's headers are now asked for at once. Real anvil nodes behind relays
 * that delay and cut them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { CutRelay } from '../support/cut-relay.js';
import { DelayRelay } from '../support/delay-relay.js';
import { startGateway } from '../support/gateway.js';
import { canonicalHashes } from '../support/node-rpc.js';
import { sumSamples } from '../support/prom-text.js';
import { headProblems, StreamClient, waitUntil } from '../support/stream-recorder.js';

/** Each way: an 80 ms round trip, a node at a provider across a continent. */
const DELAY_MS = 40;
const REPLAY_MAX_MS = 3000;
/** Blocks missed: walked one round trip each, about 8 s of walking. */
const MISSED = 100;
/** Every node refused for this long: the outage's blocks are mined well within it. */
const OUTAGE_MS = 6000;

test('a replay of 100 blocks over an 80 ms round trip delivers every block within replayMaxMs', { timeout: 90_000 }, async (t) => {
  const devnet = await LockstepDevnet.start({ nodes: 2, blockTimeMs: 0, traffic: false });
  t.after(() => devnet.close());
  const delays = await Promise.all(devnet.nodes.map((node) => DelayRelay.start(node.port, DELAY_MS)));
  t.after(() => Promise.all(delays.map((relay) => relay.close())));
  const cuts = await Promise.all(delays.map((relay) => CutRelay.start(relay.port)));
  t.after(() => Promise.all(cuts.map((relay) => relay.close())));
  const evmux = await startGateway(
    cuts.map((relay) => `ws://127.0.0.1:${relay.port}/`),
    { subscriptions: { replayMaxMs: REPLAY_MAX_MS } },
  );
  t.after(() => evmux.close());
  await devnet.mine(2);

  const client = await StreamClient.open(evmux.wsUrl, 'wallet');
  t.after(() => client.close());
  const heads = await client.subscribe(['newHeads']);
  const from = BigInt((await client.first(heads)).result['number'] as string);
  await devnet.mine(2);
  await waitUntil('the blocks delivered', () => client.tip(heads) === BigInt(devnet.blockNumber), 5000);

  const outage = Date.now();
  for (const relay of cuts) relay.cut(OUTAGE_MS);
  await devnet.mine(MISSED);
  assert.ok(Date.now() - outage < OUTAGE_MS, 'the blocks mined during the outage');
  const end = BigInt(devnet.blockNumber);
  await waitUntil('the stream at the head', () => client.tip(heads) === end, OUTAGE_MS + 20_000);

  const canonical = await canonicalHashes(devnet.nodes[0]!.httpUrl, from, end);
  assert.deepEqual(headProblems(client.heads(heads), canonical, end, 'unchecked'), []);
  const metrics = (await evmux.get('/metrics')).body;
  assert.equal(sumSamples(metrics, 'evmux_replay_truncations_total'), 0, 'no jump');
});
