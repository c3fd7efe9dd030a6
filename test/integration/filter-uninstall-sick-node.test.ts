/**
 * eth_uninstallFilter of a filter whose node is connected but failing its probes: the client is
 * answered true at once (the node may not answer), and the node is still asked to uninstall it.
 * It was not asked, and kept the filter until its own timeout (5 minutes on geth).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeNode, FakeRpcError } from '../support/fake-node.js';
import { startGateway } from '../support/gateway.js';
import { rpcAnswer } from '../support/node-rpc.js';
import { waitUntil } from '../support/stream-recorder.js';

test('eth_uninstallFilter on a node that fails its probes answers true and still uninstalls the node\'s filter', async (t) => {
  const node = await FakeNode.start();
  t.after(() => node.close());
  node.handle('eth_newBlockFilter', () => '0xabc');
  const uninstalled: unknown[] = [];
  const installed = new Set(['0xabc']);
  node.handle('eth_uninstallFilter', (params) => {
    uninstalled.push(params[0]);
    return installed.delete(String(params[0]));
  });
  const evmux = await startGateway([node.url], { health: { probeIntervalMs: 100 } });
  t.after(() => evmux.close());
  await waitUntil('the node usable', async () => (await evmux.metric('evmux_upstream_up', { upstream: 'node0' })) === 1, 5_000);
  const made = await rpcAnswer(evmux.httpUrl, 'eth_newBlockFilter', []);
  assert.equal(typeof made.result, 'string', JSON.stringify(made));

  node.handle('eth_blockNumber', () => {
    throw new FakeRpcError(-32000, 'backend unavailable');
  });
  await waitUntil('the node down by its probes', async () => (await evmux.metric('evmux_upstream_up', { upstream: 'node0' })) === 0, 5_000);
  assert.deepEqual(await rpcAnswer(evmux.httpUrl, 'eth_uninstallFilter', [made.result]), { result: true });
  await waitUntil('the node asked to uninstall its filter', () => uninstalled.length > 0, 2_000);
  assert.deepEqual([uninstalled, [...installed]], [['0xabc'], []]);
  assert.deepEqual(await rpcAnswer(evmux.httpUrl, 'eth_uninstallFilter', [made.result]), { result: false }, 'once more: there is no such filter any more');
});
