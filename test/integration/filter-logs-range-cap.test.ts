/**
 * A logs filter moved to a node that caps eth_getLogs ranges (QuickNode's free plans serve 5
 * blocks; a move's replay covers at least 12): the replay is read in smaller ranges and its client
 * gets every log once. Before, every poll after the filter's node died answered -32050 for good.
 * Real anvil nodes, each behind a relay that refuses eth_getLogs as such a provider does.
 */
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { decodeFilterId } from '../../src/router/filter-id.js';
import { assertLogSequence, logKey, mineWithEmits, type LogKey } from '../support/client-fixture.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { LogsRangeRelay, type LogsRefusal } from '../support/logs-range-relay.js';
import { rpcAnswer } from '../support/node-rpc.js';

/** The most blocks the relays let one eth_getLogs span. */
const CAP = 5n;

/** QuickNode's refusal of a range over its plan's cap. */
const overCap: LogsRefusal = ({ from, to }) => (to - from + 1n > CAP ? `eth_getLogs and eth_newFilter are limited to a ${CAP} blocks range` : undefined);

let closers: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const close of closers.reverse()) await close();
  closers = [];
});

async function capped(refusal: LogsRefusal): Promise<{ devnet: LockstepDevnet; relays: LogsRangeRelay[]; evmux: TestGateway }> {
  const devnet = await LockstepDevnet.start({ nodes: 3, blockTimeMs: 0 });
  closers.push(() => devnet.close());
  const relays = await Promise.all(devnet.nodes.map((node) => LogsRangeRelay.start(node.wsUrl, refusal)));
  closers.push(() => Promise.all(relays.map((relay) => relay.close())).then(() => undefined));
  const evmux = await startGateway(
    relays.map((relay) => relay.url),
    {},
    { logLevel: process.env.EVMUX_TEST_LOG_LEVEL ?? 'warn' },
  );
  closers.push(() => evmux.close());
  await mineWithEmits(devnet, 2);
  return { devnet, relays, evmux };
}

/** A logs filter on the emitter made through evmux, and a poll that adds what it hands over to `received`. */
async function emitterFilter(devnet: LockstepDevnet, evmux: TestGateway) {
  const criteria = { address: devnet.emitterAddress, topics: [devnet.emitterTopic] };
  const made = await rpcAnswer(evmux.httpUrl, 'eth_newFilter', [criteria]);
  assert.equal(made.error, undefined, `eth_newFilter: ${JSON.stringify(made.error)}`);
  const filterId = made.result as string;
  const received: LogKey[] = [];
  const poll = async (): Promise<void> => {
    const answer = await rpcAnswer(evmux.httpUrl, 'eth_getFilterChanges', [filterId]);
    assert.equal(answer.error, undefined, `eth_getFilterChanges(${filterId}): ${JSON.stringify(answer.error)}`);
    received.push(...(answer.result as Array<Parameters<typeof logKey>[0]>).map(logKey));
  };
  return { filterId, holder: decodeFilterId(filterId).upstreamIndex, startHead: BigInt(devnet.blockNumber), received, poll };
}

/** The emitter's logs in blocks [from, to], read from a node straight (its relay passes 5 blocks at most, so not through it). */
async function chainLogs(devnet: LockstepDevnet, survivor: number, from: bigint, to: bigint): Promise<LogKey[]> {
  const node = devnet.nodes[survivor]!;
  const filter = { address: devnet.emitterAddress, topics: [devnet.emitterTopic], fromBlock: `0x${from.toString(16)}`, toBlock: `0x${to.toString(16)}` };
  const answer = await rpcAnswer(node.httpUrl, 'eth_getLogs', [filter]);
  assert.equal(answer.error, undefined);
  return (answer.result as Array<Parameters<typeof logKey>[0]>).map(logKey);
}

test('a logs filter moved to a node capping eth_getLogs at 5 blocks hands over every log once after its node dies', async () => {
  const { devnet, relays, evmux } = await capped(overCap);
  const { filterId, holder, startHead, received, poll } = await emitterFilter(devnet, evmux);
  const survivor = (holder + 1) % devnet.nodes.length;
  await mineWithEmits(devnet, 15);
  await poll();

  await devnet.kill(holder);
  await mineWithEmits(devnet, 3, 2);
  await poll();
  assert.ok(relays.some((relay) => relay.refused > 0), "premise: the move's replay was refused as over the cap");
  await mineWithEmits(devnet, 2);
  await poll();
  await sleep(100);
  await poll(); // nothing may come twice

  const expected = await chainLogs(devnet, survivor, startHead + 1n, BigInt(devnet.blockNumber));
  assertLogSequence(received, expected, `filter ${filterId}, moved off node${holder}`);
  assert.equal(await evmux.metric('evmux_filter_moves_total', { kind: 'logs', reason: 'node_down' }), 1);
  assert.equal((await evmux.metric('evmux_replay_truncations_total', { kind: 'logs' })) ?? 0, 0, 'no block skipped');
});

test("a block whose logs the node refuses even alone is skipped from a moved filter's replay, with a warning, counted", async () => {
  /** blocks with more logs than the node serves in one answer */
  const tooMany = new Set<bigint>();
  const refusal: LogsRefusal = (range) => ([...tooMany].some((block) => range.from <= block && block <= range.to) ? 'query returned more than 10000 results' : overCap(range));
  const { devnet, evmux } = await capped(refusal);
  const { filterId, holder, startHead, received, poll } = await emitterFilter(devnet, evmux);
  const survivor = (holder + 1) % devnet.nodes.length;
  await mineWithEmits(devnet, 3);
  await poll();

  await devnet.kill(holder);
  const refused = BigInt(devnet.blockNumber) + 2n;
  tooMany.add(refused);
  await mineWithEmits(devnet, 3, 2);
  await poll();
  await mineWithEmits(devnet, 2);
  await poll();

  const skipped = await chainLogs(devnet, survivor, refused, refused);
  assert.ok(skipped.length > 0, 'premise: the refused block has logs');
  const expected = (await chainLogs(devnet, survivor, startHead + 1n, BigInt(devnet.blockNumber))).filter((key) => !skipped.includes(key));
  assertLogSequence(received, expected, `filter ${filterId}, moved off node${holder}: every log but the refused block's`);
  assert.equal(await evmux.metric('evmux_replay_truncations_total', { kind: 'logs' }), 1);
  const warned = evmux.logs.filter((line) => String(line['msg']).startsWith("a block's logs are more than the node serves in one answer"));
  assert.equal(warned.length, 1, JSON.stringify(evmux.logs));
  assert.equal(warned[0]!['block'], Number(refused));
});
