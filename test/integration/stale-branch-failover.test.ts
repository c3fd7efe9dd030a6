/**
 * A failover onto a node that has not seen a reorg yet (anvil devnet, mined on demand): one node is
 * held back before a reorg, so it stays on the orphaned branch two blocks behind (within
 * maxLagBlocks: still usable); the other two die and the streams move to it. They wait for it as
 * for any node behind on the same chain: no head of the orphaned branch comes back, no removal of
 * the canonical blocks' logs. Once released it rolls forward onto the canonical branch and the
 * streams go on from there. A client sees one reorg, as it would connected straight to any node.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { startGateway } from '../support/gateway.js';
import { canonicalHashes, canonicalLogs } from '../support/node-rpc.js';
import { headProblems, logProblems, pinnedUpstream, sleep, StreamClient, waitUntil } from '../support/stream-recorder.js';

/** A new stream is anchored in its topic's queue right after its reply: let that happen first. */
const START_SETTLE_MS = 300;
/**
 * After the newHeads catch-up on the held node is known to have run (see the joiner below), the
 * logs topic's catch-up, started in the same failover, is given this long to have run too.
 */
const LOGS_CATCH_UP_MS = 1000;

interface UpstreamStatus {
  name: string;
  usable: boolean;
}

test('a failover onto a node still on the orphaned branch waits for it: one reorg, nothing twice', { timeout: 45_000 }, async (t) => {
  const devnet = await LockstepDevnet.start({ nodes: 3, blockTimeMs: 0, traffic: true });
  t.after(() => devnet.close());
  const evmux = await startGateway(devnet.nodes.map((node) => node.wsUrl), { health: { maxLagBlocks: 5 } });
  t.after(() => evmux.close());
  const usable = async (name: string): Promise<boolean> =>
    (JSON.parse((await evmux.get('/status')).body) as { upstreams: UpstreamStatus[] }).upstreams.find((upstream) => upstream.name === name)?.usable ?? false;
  await devnet.mine(4);

  const client = await StreamClient.open(evmux.wsUrl, 'client');
  t.after(() => client.close());
  const low = BigInt(devnet.blockNumber);
  const heads = await client.subscribe(['newHeads']);
  const logs = await client.subscribe(['logs', { address: devnet.emitterAddress }]);
  await client.first(heads);
  const greeting = { low, high: BigInt(devnet.blockNumber) };
  await sleep(START_SETTLE_MS);
  await devnet.mine(2);

  const pinned = pinnedUpstream((await evmux.get('/status')).body);
  assert.ok(pinned !== undefined, 'the streams are on one node');
  const q = Number(pinned.replace('node', ''));
  const p = (q + 1) % 3;
  const x = (q + 2) % 3;

  // p stays on the old branch: one block behind, then the reorg replaces that block and the next.
  devnet.hold(p);
  await devnet.mine(1);
  await devnet.reorg(2);
  const tip = await devnet.head(q);
  const stale = await devnet.head(p);
  assert.equal(tip.number - stale.number, 2n, 'the held node lags by two, within maxLagBlocks');
  // Every block has an emitter log (traffic); the tip's comes with its head or a moment after.
  await waitUntil('the reorg delivered', () => client.heads(heads).at(-1)?.hash === tip.hash && client.logs(logs).at(-1)?.blockHash === tip.hash, 5000);
  const beforeMove = client.heads(heads).length;
  const logsBeforeMove = client.logs(logs).length;

  // The third node first, so the streams go straight to p.
  await devnet.kill(x);
  await waitUntil(`node${x} unusable`, async () => !(await usable(`node${x}`)), 5000, 50);
  await devnet.kill(q);
  await waitUntil(`streams moved to node${p}`, async () => {
    const status = (await evmux.get('/status')).body;
    return pinnedUpstream(status, 'newHeads') === `node${p}` && pinnedUpstream(status, 'logs') === `node${p}`;
  }, 5000, 50);

  // A newHeads subscriber that joins now is greeted in the topic's queue after the moved group's
  // catch-up: its greeting is the head the stream holds once that catch-up ran.
  const joiner = await StreamClient.open(evmux.wsUrl, 'joiner');
  t.after(() => joiner.close());
  const joined = await joiner.subscribe(['newHeads']);
  const greeted = await joiner.first(joined);
  assert.equal(greeted.result['hash'], tip.hash, 'the stream still holds the canonical head, not the held node\'s');
  await sleep(LOGS_CATCH_UP_MS);
  assert.equal(client.heads(heads).length, beforeMove, 'no head delivered while the node is behind');
  assert.deepEqual(client.logs(logs).slice(logsBeforeMove), [], 'no log delivered or removed while the node is behind');

  await devnet.release(p);
  await devnet.mine(2);
  const end = BigInt(devnet.blockNumber);
  await waitUntil('the stream at the new head', () => client.tip(heads) === end && joiner.tip(joined) === end, 10_000);
  await sleep(300);

  const node = devnet.nodes[p]!.httpUrl;
  const canonical = await canonicalHashes(node, 0n, end);
  assert.equal(canonical.get(tip.number), tip.hash, 'the held node rolled forward onto the canonical branch');
  assert.deepEqual(headProblems(client.heads(heads), canonical, end, greeting), []);
  assert.deepEqual(headProblems(joiner.heads(joined), canonical, end, { low: tip.number, high: tip.number }), []);
  const wentBack = client.heads(heads).filter((head, i, all) => i > 0 && head.number <= all[i - 1]!.number);
  assert.equal(wentBack.length, 1, 'one reorg, the real one');

  const canonicalFrom = await canonicalLogs(node, { address: devnet.emitterAddress }, low + 1n, end);
  assert.deepEqual(logProblems(client.logs(logs), canonicalFrom, new Set(canonical.values()), low + 1n, end), []);
  assert.ok(client.logs(logs).some((log) => log.removed), 'the logs of the replaced blocks removed, once');
});
