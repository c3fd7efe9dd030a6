/**
 * One node whose eth_blockNumber runs ahead of its own blocks (by 20 here: under the 64-block bound
 * on an absurd head, and there from its first probe) took every other node out of rotation as
 * "lagging", took every call, and clients were told of a head no node had: eth_getBlockByNumber of
 * it answered null. A lead past health.maxLagBlocks now stands only with a block to show for it.
 * Real anvil nodes, one behind a relay that lies in its eth_blockNumber answers.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { HeadLieRelay } from '../support/head-lie-relay.js';
import { rpcAnswer } from '../support/node-rpc.js';
import { sleep, StreamClient, subscriptionsByUpstream, waitUntil } from '../support/stream-recorder.js';

const LEAD = 20n;

interface UpstreamStatus {
  name: string;
  head: string | null;
  usable: boolean;
  lag: number | null;
}

async function upstreams(evmux: TestGateway): Promise<UpstreamStatus[]> {
  return (JSON.parse((await evmux.get('/status')).body) as { upstreams: UpstreamStatus[] }).upstreams;
}

/** Three anvil nodes in lockstep, node2 behind the lying relay, evmux in front (sessions pinned by a query key). */
async function liarDevnet(t: TestContext): Promise<{ devnet: LockstepDevnet; relay: HeadLieRelay; evmux: TestGateway }> {
  const devnet = await LockstepDevnet.start({ nodes: 3, blockTimeMs: 0, traffic: false });
  t.after(() => devnet.close());
  const liar = devnet.nodes[2]!;
  const relay = await HeadLieRelay.start(liar.wsUrl, liar.httpUrl, LEAD);
  t.after(() => relay.close());
  const evmux = await startGateway([devnet.nodes[0]!.wsUrl, devnet.nodes[1]!.wsUrl, relay.url], { subscriptions: { sessionKey: { source: 'query' } } });
  t.after(() => evmux.close());
  await devnet.mine(3);
  return { devnet, relay, evmux };
}

/** What the nodes and clients see once the liar has been probed a few times while blocks come. */
async function assertLieIgnored(devnet: LockstepDevnet, relay: HeadLieRelay, evmux: TestGateway): Promise<void> {
  const probed = relay.lied;
  for (let block = 0; block < 4; block++) {
    await devnet.mine(1);
    await sleep(300); // past a probe interval (250 ms)
  }
  await waitUntil('the liar probed several times', () => relay.lied >= probed + 4, 5000);
  const real = BigInt(devnet.blockNumber);
  const status = await upstreams(evmux);
  assert.deepEqual(status.map((upstream) => [upstream.name, upstream.usable]), [['node0', true], ['node1', true], ['node2', true]], 'every node usable');
  assert.ok(status.every((upstream) => upstream.head !== null && BigInt(upstream.head) <= real), `heads ${status.map((upstream) => upstream.head).join(', ')} against the chain's ${real}`);
  // Least connections spreads them over the three nodes: the liar's answers too.
  for (let i = 0; i < 9; i++) {
    const head = (await rpcAnswer(evmux.httpUrl, 'eth_blockNumber', [])).result as string;
    assert.ok(BigInt(head) <= real, `eth_blockNumber through evmux answered ${BigInt(head)}; the chain is at ${real}`);
    assert.notEqual((await rpcAnswer(evmux.httpUrl, 'eth_getBlockByNumber', [head, false])).result, null, `block ${head} read back`);
  }
  assert.equal(evmux.logs.filter((line) => line['upstream'] === 'node2' && /eth_blockNumber ahead of its blocks/.test(String(line['msg']))).length, 1, 'the liar logged once');
}

test('a node whose eth_blockNumber runs 20 blocks ahead of its blocks, no client following newHeads: the other nodes stay usable, clients see the real head', { timeout: 60_000 }, async (t) => {
  const { devnet, relay, evmux } = await liarDevnet(t);
  await assertLieIgnored(devnet, relay, evmux);
});

test("the same with the liar's own newHeads stream live (a client pinned to it)", { timeout: 60_000 }, async (t) => {
  const { devnet, relay, evmux } = await liarDevnet(t);
  // Session keys are hashed onto the ring: the first key that lands on node2 pins its client there.
  let client: StreamClient | undefined;
  for (let key = 0; key < 32 && client === undefined; key++) {
    const candidate = await StreamClient.open(`${evmux.wsUrl}?session=k${key}`, `k${key}`);
    await candidate.subscribe(['newHeads']);
    if (subscriptionsByUpstream((await evmux.get('/status')).body).get('node2')?.get('newHeads') === 1) client = candidate;
    else candidate.close();
  }
  assert.ok(client !== undefined, 'a client pinned to node2');
  t.after(() => client.close());
  await assertLieIgnored(devnet, relay, evmux);
});

test('a node really more than health.maxLagBlocks ahead (the others held back) is believed: the others lag', { timeout: 60_000 }, async (t) => {
  const devnet = await LockstepDevnet.start({ nodes: 3, blockTimeMs: 0, traffic: false });
  t.after(() => devnet.close());
  const evmux = await startGateway(devnet.nodes.map((node) => node.wsUrl));
  t.after(() => evmux.close());
  await devnet.mine(3);
  devnet.hold(0);
  devnet.hold(1);
  await devnet.mine(8);
  await waitUntil('node0 and node1 out as lagging', async () => (await upstreams(evmux)).map((upstream) => upstream.usable).join() === 'false,false,true', 5000);
  assert.equal(BigInt((await rpcAnswer(evmux.httpUrl, 'eth_blockNumber', [])).result as string), BigInt(devnet.blockNumber));
});
