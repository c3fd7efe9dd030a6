/**
 * A node that fails one call a stream needs (a provider's rate limit on eth_getBlockByNumber or
 * eth_getLogs) while it answers its probes and its streams go on: after one head (or log) its
 * stream skipped, the stream needed that call, failed its step, and tried again each second on the
 * same node for good. The client got nothing more, with a healthy node beside and no failover. Its
 * clients now move to the other node, which replays what they missed. Real anvil nodes behind
 * relays that fail the one method.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { mineWithEmits } from '../support/client-fixture.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { MethodFailRelay } from '../support/method-fail-relay.js';
import { canonicalHashes, canonicalLogs } from '../support/node-rpc.js';
import { sumSamples } from '../support/prom-text.js';
import { headProblems, logProblems, pinnedUpstream, sleep, StreamClient, waitUntil } from '../support/stream-recorder.js';

/** Blocks mined once the node fails the call: the first one's head (or log) skipped by its stream. */
const BLOCKS = 6;
/** For the stream to reach the head on the other node: three failed steps (a catch-up a second) and a replay. */
const MOVE_WITHIN_MS = 10_000;
/** A new logs stream is anchored in its topic's queue right after its reply: let that happen first. */
const START_SETTLE_MS = 300;
const WARNING = 'subscription steps keep failing on this node: its clients go to other nodes for a while';

interface Setup {
  devnet: LockstepDevnet;
  relays: MethodFailRelay[];
  evmux: TestGateway;
  client: StreamClient;
}

async function setUp(t: TestContext): Promise<Setup> {
  const devnet = await LockstepDevnet.start({ nodes: 2, blockTimeMs: 0, traffic: false });
  t.after(() => devnet.close());
  const relays = await Promise.all(devnet.nodes.map((node) => MethodFailRelay.start(node.wsUrl)));
  t.after(() => Promise.all(relays.map((relay) => relay.close())));
  const evmux = await startGateway(relays.map((relay) => relay.url));
  t.after(() => evmux.close());
  await devnet.mine(2);
  const client = await StreamClient.open(evmux.wsUrl, 'client');
  t.after(() => client.close());
  return { devnet, relays, evmux, client };
}

/** The index of the node holding the client's subscription of `kind`, from /status. */
async function streamNode(evmux: TestGateway, kind: string): Promise<number | undefined> {
  const name = pinnedUpstream((await evmux.get('/status')).body, kind);
  return name === undefined ? undefined : Number(name.replace('node', ''));
}

test('a newHeads stream whose node fails eth_getBlockByNumber after a skipped head moves to the other node, whole', { timeout: 60_000 }, async (t) => {
  const { devnet, relays, evmux, client } = await setUp(t);
  const heads = await client.subscribe(['newHeads']);
  const first = BigInt((await client.first(heads)).result['number'] as string);
  const home = await streamNode(evmux, 'newHeads');
  assert.ok(home !== undefined, 'the stream is on a node');

  relays[home]!.failing = 'eth_getBlockByNumber';
  relays[home]!.dropNext('"parentHash"');
  await devnet.mine(BLOCKS);
  const end = BigInt(devnet.blockNumber);
  await waitUntil('the stream at the head', () => client.tip(heads) === end, MOVE_WITHIN_MS);

  assert.ok(relays[home]!.failed > 0, 'the stream asked the failing node for the skipped head');
  assert.equal(await streamNode(evmux, 'newHeads'), 1 - home, 'the stream on the other node');
  const canonical = await canonicalHashes(devnet.nodes[0]!.httpUrl, first, end);
  assert.deepEqual(headProblems(client.heads(heads), canonical, end, 'unchecked'), []);
  assert.ok(sumSamples((await evmux.get('/metrics')).body, 'evmux_failovers_total', { kind: 'newHeads' }) >= 1, 'a failover counted');
  assert.ok(evmux.logs.some((line) => line['msg'] === WARNING && line['kind'] === 'newHeads'), 'and logged');
});

test('a logs stream whose node fails eth_getLogs for a block whose log it skipped moves to the other node, whole', { timeout: 60_000 }, async (t) => {
  const { devnet, relays, evmux, client } = await setUp(t);
  const filter = { address: devnet.emitterAddress };
  const logs = await client.subscribe(['logs', filter]);
  await sleep(START_SETTLE_MS);
  const from = BigInt(devnet.blockNumber) + 1n;
  await mineWithEmits(devnet, 1);
  await waitUntil('the first log', () => client.logs(logs).length > 0, 5000);
  const home = await streamNode(evmux, 'logs');
  assert.ok(home !== undefined, 'the stream is on a node');

  relays[home]!.failing = 'eth_getLogs';
  relays[home]!.dropNext('"logIndex"');
  await mineWithEmits(devnet, BLOCKS);
  const end = BigInt(devnet.blockNumber);
  await waitUntil('the head\'s log', () => client.logs(logs).some((log) => log.blockNumber === end), MOVE_WITHIN_MS);

  assert.ok(relays[home]!.failed > 0, 'the stream asked the failing node for the skipped log');
  assert.equal(await streamNode(evmux, 'logs'), 1 - home, 'the stream on the other node');
  const canonical = await canonicalLogs(devnet.nodes[0]!.httpUrl, filter, from, end);
  assert.equal(canonical.length, BLOCKS + 1, 'a log a block');
  const hashes = new Set((await canonicalHashes(devnet.nodes[0]!.httpUrl, from, end)).values());
  assert.deepEqual(logProblems(client.logs(logs), canonical, hashes, from, end), []);
  assert.ok(sumSamples((await evmux.get('/metrics')).body, 'evmux_failovers_total', { kind: 'logs' }) >= 1, 'a failover counted');
  assert.ok(evmux.logs.some((line) => line['msg'] === WARNING && line['kind'] === 'logs'), 'and logged');
});
