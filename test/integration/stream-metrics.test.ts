/**
 * What the stream counters say about a reorg (anvil devnet, mined on demand):
 * evmux_reorgs_total counts one reorg once, however many streams went over it and however much of
 * it each had delivered; evmux_replayed_notifications_total counts a reorg that comes live on the
 * node the same for logs as for newHeads: the head the node sends, and its logs, are live.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { mineWithEmits } from '../support/client-fixture.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { sumSamples } from '../support/prom-text.js';
import { sleep, StreamClient, subscriptionsByUpstream, waitUntil } from '../support/stream-recorder.js';

/** A new stream is anchored in its topic's queue right after its reply: let that happen first. */
const START_SETTLE_MS = 300;
/** Session keys tried to find one the ring puts on a given node. */
const KEYS_TRIED = 40;

/** A client whose session key puts its streams on `node`, with a newHeads subscription there. */
async function clientOn(evmux: TestGateway, node: string): Promise<{ client: StreamClient; heads: string }> {
  for (let i = 0; i < KEYS_TRIED; i++) {
    const before = subscriptionsByUpstream((await evmux.get('/status')).body).get(node)?.get('newHeads') ?? 0;
    const client = await StreamClient.open(`${evmux.wsUrl}?session=key-${i}`, node);
    const heads = await client.subscribe(['newHeads']);
    await client.first(heads);
    const after = subscriptionsByUpstream((await evmux.get('/status')).body).get(node)?.get('newHeads') ?? 0;
    if (after > before) return { client, heads };
    client.close();
  }
  throw new Error(`none of ${KEYS_TRIED} session keys landed on ${node}`);
}

test('one reorg, gone over by streams on two nodes a block apart and by a logs stream anchored above its fork point, is counted once', { timeout: 45_000 }, async (t) => {
  const devnet = await LockstepDevnet.start({ nodes: 2, blockTimeMs: 0, traffic: true });
  t.after(() => devnet.close());
  const evmux = await startGateway(devnet.nodes.map((node) => node.wsUrl), { subscriptions: { sessionKey: { source: 'query', name: 'session' } } }, { logLevel: 'warn' });
  t.after(() => evmux.close());
  await devnet.mine(3);
  const ahead = await clientOn(evmux, 'node0');
  t.after(() => ahead.client.close());
  const behind = await clientOn(evmux, 'node1');
  t.after(() => behind.client.close());

  // node1 a block behind: its stream has delivered one head of the branch the reorg replaces, node0's two.
  devnet.hold(1);
  await devnet.mine(1);
  const tip = await devnet.head(0);
  await waitUntil('node0 stream at the tip', () => ahead.client.tip(ahead.heads) === tip.number, 5000);
  assert.equal(behind.client.tip(behind.heads), tip.number - 1n, 'node1 stream a block behind');
  // Anchored at the tip: it has delivered none of the replaced blocks below it.
  const logs = await ahead.client.subscribe(['logs', { address: devnet.emitterAddress }]);
  await sleep(START_SETTLE_MS);

  await devnet.reorg(2); // the tip and the block below it replaced, one block more
  const end = await devnet.head(0);
  // Every block has an emitter log (traffic): the logs stream has gone over the reorg once it has the head's.
  await waitUntil('node0 streams over the reorg', () => ahead.client.heads(ahead.heads).at(-1)?.hash === end.hash && ahead.client.logs(logs).at(-1)?.blockHash === end.hash, 5000);
  await devnet.release(1);
  await waitUntil('node1 stream over the reorg', () => behind.client.heads(behind.heads).at(-1)?.hash === end.hash, 10_000);
  const wentBack = (heads: Array<{ number: bigint }>) => heads.some((head, i) => i > 0 && head.number <= heads[i - 1]!.number);
  assert.ok(wentBack(ahead.client.heads(ahead.heads)) && wentBack(behind.client.heads(behind.heads)), 'both newHeads streams delivered the new branch from the fork point');

  assert.equal(sumSamples((await evmux.get('/metrics')).body, 'evmux_reorgs_total'), 1);
});

test('a reorg that comes live on one node: its logs are not counted as replayed, as its heads are not', { timeout: 30_000 }, async (t) => {
  const devnet = await LockstepDevnet.start({ nodes: 1, blockTimeMs: 0, traffic: false });
  t.after(() => devnet.close());
  const evmux = await startGateway(devnet.nodes.map((node) => node.wsUrl), {}, { logLevel: 'warn' });
  t.after(() => evmux.close());
  await mineWithEmits(devnet, 2);
  const client = await StreamClient.open(evmux.wsUrl, 'client');
  t.after(() => client.close());
  const heads = await client.subscribe(['newHeads']);
  const logs = await client.subscribe(['logs', { address: devnet.emitterAddress }]);
  await client.first(heads);
  await sleep(START_SETTLE_MS);
  await mineWithEmits(devnet, 2, 2);
  const tip = await devnet.head(0);
  await waitUntil('the logs of the tip', () => client.logs(logs).filter((log) => log.blockHash === tip.hash).length === 2, 5000);
  const replayed = async (kind: string): Promise<number> => sumSamples((await evmux.get('/metrics')).body, 'evmux_replayed_notifications_total', { kind });
  assert.deepEqual([await replayed('newHeads'), await replayed('logs')], [0, 0], 'nothing replayed yet');

  // The tip replaced by a block with two logs (the emits queued), then one more block: each comes as the node's head.
  devnet.queueEmit();
  devnet.queueEmit();
  await devnet.reorg(1);
  const end = await devnet.head(0);
  await waitUntil('the new branch and its logs', () => {
    const got = client.logs(logs);
    const replacing = got.filter((log) => log.blockNumber === tip.number && log.blockHash !== tip.hash);
    return got.filter((log) => log.removed).length === 2 && replacing.length === 2 && client.heads(heads).at(-1)?.hash === end.hash;
  }, 5000);
  await sleep(300);
  assert.equal(await replayed('newHeads'), 0, 'the new branch came head by head, live');
  assert.equal(await replayed('logs'), 0, 'and so did its logs');
});
