/**
 * With no newHeads subscription on a node, evmux learns its head from probes and answers. The best
 * head, each node's lag in /status and evmux_upstream_head follow such a head at once: they were
 * looked at again only every second, so the metric trailed a block and /status showed a node's lag
 * as -1 (a helper: in 3 to 7 of 30 samples). And /status's headHash, once the newHeads stream it
 * came from had ended, stayed the hash of the stream's last head while `head` moved on.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { startGateway } from '../support/gateway.js';
import { rpc } from '../support/node-rpc.js';
import { sleep, StreamClient, waitUntil } from '../support/stream-recorder.js';

interface Status {
  bestHead: string | null;
  upstreams: Array<{ name: string; head: string | null; headHash: string | null; lag: number | null }>;
}

test('a head learned from probes moves the best head, the lags and evmux_upstream_head with it', async (t) => {
  const devnet = await LockstepDevnet.start({ nodes: 2, blockTimeMs: 0 });
  t.after(() => devnet.close());
  const evmux = await startGateway(devnet.nodes.map((node) => node.wsUrl), { health: { probeIntervalMs: 100 } }, { logLevel: 'warn' });
  t.after(() => evmux.close());
  const problems: string[] = [];
  for (let block = 0; block < 6; block++) {
    await devnet.mine();
    for (let sample = 0; sample < 10; sample++) {
      await sleep(30);
      const status = JSON.parse((await evmux.get('/status')).body) as Status;
      for (const upstream of status.upstreams) {
        if (upstream.lag !== null && upstream.lag < 0) problems.push(`${upstream.name} lag ${upstream.lag} (head ${upstream.head}, best ${status.bestHead})`);
        if (upstream.head === null) continue;
        const metric = await evmux.metric('evmux_upstream_head', { upstream: upstream.name });
        // The metric is read after /status: it may be ahead of it, never behind.
        if (metric === undefined || metric < Number(upstream.head)) problems.push(`${upstream.name} evmux_upstream_head ${metric} behind its head ${upstream.head}`);
      }
    }
  }
  assert.deepEqual(problems, []);
});

test('headHash is the hash of the head /status shows, or null once probes moved the head past the last streamed one', async (t) => {
  const devnet = await LockstepDevnet.start({ nodes: 1, blockTimeMs: 0 });
  t.after(() => devnet.close());
  const evmux = await startGateway(devnet.nodes.map((node) => node.wsUrl), { health: { probeIntervalMs: 100 }, subscriptions: { gracePeriodMs: 200 } }, { logLevel: 'warn' });
  t.after(() => evmux.close());
  const node = async (): Promise<Status['upstreams'][number]> => (JSON.parse((await evmux.get('/status')).body) as Status).upstreams[0]!;

  const client = await StreamClient.open(evmux.wsUrl, 'wallet');
  const heads = await client.subscribe(['newHeads']);
  await devnet.mine(2);
  await waitUntil('the heads streamed', () => client.tip(heads) === BigInt(devnet.blockNumber), 5000);
  const streamed = await devnet.head(0);
  await waitUntil('the streamed head in /status', async () => (await node()).headHash === streamed.hash, 5000);
  client.close();
  await waitUntil('the stream dropped', async () => (await evmux.metric('evmux_upstream_subscriptions', { upstream: 'node0', kind: 'newHeads' })) === 0, 5000);

  await devnet.mine(3);
  await waitUntil('the new head probed', async () => (await node()).head === String(devnet.blockNumber), 5000);
  const { head, headHash } = await node();
  if (headHash !== null) {
    const block = await rpc<{ number: string }>(devnet.nodes[0]!.httpUrl, 'eth_getBlockByHash', [headHash, false]);
    assert.equal(BigInt(block.number).toString(), head, `headHash ${headHash} is the hash of head ${head}`);
  }
});
