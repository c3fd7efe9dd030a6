/**
 * A reorg whose fork point is older than a stream (anvil devnet, mined on demand): the stream
 * subscribed at block 5, block 6 follows, then blocks 3 to 6 are replaced. The new branch reaches
 * the client from its first head's height (or lower) on, parent-linked from there, its logs in
 * order and the delivered ones removed first. It is a reorg, not a replay bound: no jump is
 * counted or logged.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { startGateway } from '../support/gateway.js';
import { canonicalHashes, canonicalLogs } from '../support/node-rpc.js';
import { sumSamples } from '../support/prom-text.js';
import { logProblems, sleep, StreamClient, waitUntil } from '../support/stream-recorder.js';

/** A new stream is anchored in its topic's queue right after its reply: let that happen first. */
const START_SETTLE_MS = 300;

test('a reorg older than the stream: the new branch from its first height on, no jump', { timeout: 30_000 }, async (t) => {
  const devnet = await LockstepDevnet.start({ nodes: 2, blockTimeMs: 0, traffic: false });
  t.after(() => devnet.close());
  const evmux = await startGateway(devnet.nodes.map((node) => node.wsUrl));
  t.after(() => evmux.close());
  const mine = async (): Promise<void> => {
    devnet.queueEmit();
    await devnet.mine(1);
  };
  for (let i = 0; i < 4; i++) await mine();
  const start = BigInt(devnet.blockNumber);

  const client = await StreamClient.open(evmux.wsUrl, 'client');
  t.after(() => client.close());
  const heads = await client.subscribe(['newHeads']);
  const logs = await client.subscribe(['logs', { address: devnet.emitterAddress }]);
  await client.first(heads);
  await sleep(START_SETTLE_MS);
  await mine();
  await waitUntil('the block after the start', () => client.tip(heads) === start + 1n, 5000);
  const before = client.heads(heads).map((head) => head.hash);

  await devnet.reorg(3); // fork point start - 2: blocks start - 1 .. start + 1 replaced, one more added
  await mine();
  const end = BigInt(devnet.blockNumber);
  await waitUntil('the new branch delivered', () => client.tip(heads) === end && client.heads(heads).at(-1)!.hash !== before.at(-1), 5000);
  await sleep(300);

  const canonical = await canonicalHashes(devnet.nodes[0]!.httpUrl, 0n, end);
  const delivered = client.heads(heads);
  assert.deepEqual(delivered.slice(0, 2).map((head) => head.hash), before, 'the first head and the next one, as they were');
  const branch = delivered.slice(2);
  assert.ok(branch[0]!.number <= start, `the new branch from the first height on or lower (from ${branch[0]!.number}, start ${start})`);
  assert.deepEqual(
    branch.map((head) => [head.number, head.hash]),
    [...canonical].filter(([number]) => number >= branch[0]!.number).map(([number, hash]) => [number, hash]),
    'every canonical block from there to the head, once, in order',
  );
  for (let i = 1; i < branch.length; i++) assert.equal(branch[i]!.parentHash, branch[i - 1]!.hash, 'parent-linked');

  const hashes = new Set(canonical.values());
  const canonicalFrom = await canonicalLogs(devnet.nodes[0]!.httpUrl, { address: devnet.emitterAddress }, start + 1n, end);
  assert.deepEqual(logProblems(client.logs(logs), canonicalFrom, hashes, start + 1n, end), []);
  assert.ok(client.logs(logs).some((log) => log.removed), 'the delivered log of the replaced block removed');

  const metrics = (await evmux.get('/metrics')).body;
  assert.equal(sumSamples(metrics, 'evmux_replay_truncations_total'), 0, 'not a replay bound');
  assert.equal(evmux.logs.filter((line) => /replay bound hit/.test(String(line['msg']))).length, 0);
});
