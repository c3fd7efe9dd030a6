/**
 * A newHeads replay its clients left: the stream's walk back over a reorg waits on a node slow to
 * answer (its header calls held) while the stream moves to its own node, back from an outage. The
 * walk went on to subscriptions.replayMaxMs and jumped for no one: `replay bound hit` was logged
 * and counted while the client's stream, on the other node, skipped nothing. A walk whose clients
 * left now stops. Real anvil nodes behind relays that cut them and hold their header calls.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { startGateway } from '../support/gateway.js';
import { HeaderHoldRelay } from '../support/header-hold-relay.js';
import { canonicalHashes } from '../support/node-rpc.js';
import { sumSamples } from '../support/prom-text.js';
import { headProblems, pinnedUpstream, sleep, StreamClient, waitUntil } from '../support/stream-recorder.js';

const REPLAY_MAX_MS = 1500;
/** Long enough for the held calls to wait out the walk's deadline and the stream's move. */
const REQUEST_TIMEOUT_MS = 20_000;
/** For the walk let go to take its next step. */
const SETTLE_MS = 1000;

test('a replay whose clients moved to another node stops: no jump logged or counted, the stream whole', { timeout: 60_000 }, async (t) => {
  const devnet = await LockstepDevnet.start({ nodes: 2, blockTimeMs: 0, traffic: false });
  t.after(() => devnet.close());
  const relays = await Promise.all(devnet.nodes.map((node) => HeaderHoldRelay.start(node.wsUrl)));
  t.after(() => Promise.all(relays.map((relay) => relay.close())));
  const evmux = await startGateway(relays.map((relay) => relay.url), {
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    subscriptions: { replayMaxMs: REPLAY_MAX_MS },
  });
  t.after(() => evmux.close());
  await devnet.mine(2);

  const client = await StreamClient.open(evmux.wsUrl, 'heads');
  t.after(() => client.close());
  const heads = await client.subscribe(['newHeads']);
  const from = BigInt((await client.first(heads)).result['number'] as string);
  // A history deeper than the reorg below, so that it is walked back to a fork point in it.
  await devnet.mine(6);
  await waitUntil('the blocks delivered', () => client.tip(heads) === BigInt(devnet.blockNumber), 5000);
  const streamOn = async (): Promise<string | undefined> => pinnedUpstream((await evmux.get('/status')).body);
  const owner = await streamOn();
  assert.ok(owner !== undefined, 'the stream is on a node');
  const ownerIndex = Number(owner.replace('node', ''));
  const home = relays[ownerIndex]!;
  const away = relays[1 - ownerIndex]!;

  // Its own node away: the stream goes to the other one.
  home.cut();
  await waitUntil('the stream on the other node', async () => (await streamOn()) === `node${1 - ownerIndex}`, 10_000);
  await devnet.mine(1);
  await waitUntil('the block delivered there', () => client.tip(heads) === BigInt(devnet.blockNumber), 5000);

  // A reorg there, its walk back held past its deadline; meanwhile its own node is back and the
  // stream moves there, where the new branch is delivered.
  away.holding = true;
  await devnet.reorg(4);
  await waitUntil('the walk back waiting on the node', () => away.held > 0, 5000);
  await sleep(REPLAY_MAX_MS);
  home.admit();
  await waitUntil('the stream back on its own node', async () => (await streamOn()) === owner, 15_000);
  const end = BigInt(devnet.blockNumber);
  const canonical = await canonicalHashes(devnet.nodes[0]!.httpUrl, from, end);
  await waitUntil('the new branch delivered', () => client.heads(heads).at(-1)?.hash === canonical.get(end), 10_000);

  // The walk on the node the stream left is let go.
  away.release();
  await sleep(SETTLE_MS);

  assert.deepEqual(headProblems(client.heads(heads), canonical, end, 'unchecked'), []);
  const metrics = (await evmux.get('/metrics')).body;
  assert.equal(sumSamples(metrics, 'evmux_replay_truncations_total'), 0, 'no jump counted');
  assert.deepEqual(evmux.logs.filter((line) => /replay bound hit/.test(String(line['msg']))), [], 'no jump logged');
});
