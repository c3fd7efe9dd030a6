/**
 * With no newHeads subscription on a node, evmux learns its head from probes and answers. The best
 * head, each node's lag in /status and evmux_upstream_head follow such a head at once: they were
 * looked at again only every second, so the metric trailed a block and /status showed a node's lag
 * as -1 (a helper: in 3 to 7 of 30 samples).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { startGateway } from '../support/gateway.js';
import { sleep } from '../support/stream-recorder.js';

interface Status {
  bestHead: string | null;
  upstreams: Array<{ name: string; head: string | null; lag: number | null }>;
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
