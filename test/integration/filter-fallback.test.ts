/**
 * Polling filters and `upstreams[].role: fallback` on a 3-node lockstep anvil devnet (node2 the
 * fallback): filters made on a primary, or made while both primaries are down, live on the fallback
 * while no primary is usable, and move back to a primary once one has been usable again for
 * subscriptions.holdDownMs, as streams do. Before, they stayed on the paid fallback for as long as
 * their clients polled. The client gets every log and block hash once, across both moves.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { decodeFilterId } from '../../src/router/filter-id.js';
import { logKey, mineWithEmits, waitFor, type LogKey } from '../support/client-fixture.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { canonicalHashes, rpc, rpcAnswer } from '../support/node-rpc.js';
import { sumSamples } from '../support/prom-text.js';

/** startGateway's subscriptions.holdDownMs. */
const HOLD_DOWN_MS = 1000;

let devnet: LockstepDevnet;
let evmux: TestGateway;

before(async () => {
  devnet = await LockstepDevnet.start({ nodes: 3, blockTimeMs: 0 });
  evmux = await startGateway(
    devnet.nodes.map((node, index) => ({ name: `node${index}`, url: node.wsUrl, ...(index === 2 ? { role: 'fallback' as const } : {}) })),
    {},
    { logLevel: process.env.EVMUX_TEST_LOG_LEVEL ?? 'warn' },
  );
});

after(async () => {
  await evmux?.close();
  await devnet?.close();
});

async function result<T>(method: string, params: unknown[]): Promise<T> {
  const answer = await rpcAnswer(evmux.httpUrl, method, params);
  assert.ok(answer.error === undefined, `${method}(${JSON.stringify(params)}) answered ${JSON.stringify(answer.error)}`);
  return answer.result as T;
}

async function usable(): Promise<Record<string, boolean>> {
  const status = JSON.parse((await evmux.get('/status')).body) as { upstreams: Array<{ name: string; usable: boolean }> };
  return Object.fromEntries(status.upstreams.map((upstream) => [upstream.name, upstream.usable]));
}

/** Filter polls evmux sent to the fallback so far. */
const pollsOnFallback = async (): Promise<number> =>
  sumSamples((await evmux.get('/metrics')).body, 'evmux_requests_total', { method: 'eth_getFilterChanges', upstream: 'node2' });

/** A filter polled through evmux, with what it handed over so far. */
interface Polled {
  id: string;
  startHead: bigint;
  received: string[];
}

async function newFilter(method: 'eth_newFilter' | 'eth_newBlockFilter'): Promise<Polled> {
  const params = method === 'eth_newFilter' ? [{ address: devnet.emitterAddress, topics: [devnet.emitterTopic] }] : [];
  return { id: await result<string>(method, params), startHead: BigInt(devnet.blockNumber), received: [] };
}

async function poll(filter: Polled): Promise<void> {
  const items = await result<unknown[]>('eth_getFilterChanges', [filter.id]);
  filter.received.push(...items.map((item) => (typeof item === 'string' ? item : logKey(item as Parameters<typeof logKey>[0]))));
}

async function logsOnChain(from: bigint): Promise<LogKey[]> {
  const filter = { address: devnet.emitterAddress, topics: [devnet.emitterTopic], fromBlock: `0x${from.toString(16)}`, toBlock: `0x${devnet.blockNumber.toString(16)}` };
  return (await rpc<Array<Parameters<typeof logKey>[0]>>(devnet.nodes[2]!.httpUrl, 'eth_getLogs', [filter])).map(logKey);
}

test('filters on the fallback move back to a primary usable again for holdDownMs, and hand over every log and hash once', { timeout: 60_000 }, async () => {
  await waitFor(async () => Object.values(await usable()).every(Boolean), 'three usable upstreams');
  await mineWithEmits(devnet, 1, 2);
  const early = await newFilter('eth_newFilter');
  const earlyBlocks = await newFilter('eth_newBlockFilter');
  assert.notEqual(decodeFilterId(early.id).upstreamIndex, 2, 'premise: a filter is made on a primary while one is usable');
  await mineWithEmits(devnet, 2, 2);
  await poll(early);
  await poll(earlyBlocks);

  // Both primaries die: the filters move to the fallback as they are polled; one made now is made there.
  await Promise.all([devnet.kill(0), devnet.kill(1)]);
  await waitFor(async () => {
    const now = await usable();
    return !now['node0'] && !now['node1'] && now['node2'] === true;
  }, 'only the fallback usable');
  await mineWithEmits(devnet, 2, 2);
  await poll(early);
  await poll(earlyBlocks);
  const during = await newFilter('eth_newFilter');
  assert.equal(decodeFilterId(during.id).upstreamIndex, 2, 'premise: a filter made while no primary is usable is made on the fallback');
  await mineWithEmits(devnet, 2, 2);
  const filters = [early, earlyBlocks, during];
  for (const filter of filters) await poll(filter);

  await Promise.all([devnet.restart(0), devnet.restart(1)]);
  await waitFor(async () => {
    const now = await usable();
    return now['node0'] === true && now['node1'] === true;
  }, 'both primaries usable again', { timeoutMs: 20_000 });
  // Usable since before they were seen usable: past this their hold-down is over.
  await sleep(HOLD_DOWN_MS + 100);

  // Each filter moves on its next poll (made again on a primary, not polled where it was).
  const fallbackPolls = await pollsOnFallback();
  for (let round = 0; round < 5; round++) {
    await mineWithEmits(devnet, 1, 2);
    for (const filter of filters) await poll(filter);
  }
  assert.equal(await pollsOnFallback(), fallbackPolls, 'no filter polled on the fallback once a primary was back past hold-down');
  assert.equal(await evmux.metric('evmux_filter_moves_total', { kind: 'logs', reason: 'primary_back' }), 2);
  assert.equal(await evmux.metric('evmux_filter_moves_total', { kind: 'blocks', reason: 'primary_back' }), 1);

  for (const filter of [early, during]) {
    assert.ok(filter.received.length > 0, `premise: filter ${filter.id} was handed over logs`);
    assert.deepEqual(filter.received, await logsOnChain(filter.startHead + 1n), `filter ${filter.id}: every log from its start, once, in order`);
  }
  const hashes = await canonicalHashes(devnet.nodes[2]!.httpUrl, earlyBlocks.startHead + 1n, BigInt(devnet.blockNumber));
  assert.deepEqual(earlyBlocks.received, [...hashes.values()], `block filter ${earlyBlocks.id}: every block hash from its start, once, in order`);
  // The fallback's node filter is uninstalled: it would go on matching there.
  const { nodeId } = decodeFilterId(during.id);
  await waitFor(
    async () => (await rpcAnswer(devnet.nodes[2]!.httpUrl, 'eth_getFilterChanges', [nodeId])).error !== undefined,
    'the node filter left on the fallback uninstalled',
  );
});
