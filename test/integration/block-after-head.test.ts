/**
 * evmux consistency gap repro: a block that evmux itself reports (eth_blockNumber, or a newHeads
 * notification) is answered `null` by eth_getBlockByNumber when the call lands on a node that
 * is still within maxLagBlocks but has not imported that block yet. A single node never does that.
 * Run: copy into /work/main/test/integration/, then node --import tsx --test test/integration/block-after-head.test.ts
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { startGateway } from '../support/gateway.js';

test('eth_getBlockByNumber(head) is never null for a head evmux reported', async () => {
  const devnet = await LockstepDevnet.start({ nodes: 2, blockTimeMs: 0 });
  const evmux = await startGateway(devnet.nodes.map((node) => node.wsUrl));
  const rpc = async (method: string, params: unknown[]): Promise<unknown> => {
    const response = await fetch(evmux.httpUrl, { method: 'POST', body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) });
    return ((await response.json()) as { result: unknown }).result;
  };
  try {
    devnet.hold(1); // node1 one block behind: lag 1 <= maxLagBlocks (5), so still "usable"
    await devnet.mine(1);
    await new Promise((resolve) => setTimeout(resolve, 600)); // let probes see both heads
    let nulls = 0;
    for (let k = 0; k < 20; k++) {
      const head = (await rpc('eth_blockNumber', [])) as string;
      if ((await rpc('eth_getBlockByNumber', [head, false])) === null) nulls++;
    }
    assert.equal(nulls, 0, `${nulls} of 20 eth_getBlockByNumber(<head evmux just reported>) answered null`);
  } finally {
    await evmux.close();
    await devnet.close();
  }
});
