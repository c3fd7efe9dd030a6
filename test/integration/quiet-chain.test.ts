/**
 * A chain quiet for longer than health.stallMs (mainnet's missed slots leave 24 s against the
 * default 15 s) is no failure: when the next block comes, the nodes that get it a moment after the
 * first one are behind, not stalled. evmux once timed a stall from each node's own last head, so
 * that moment marked every such node stalled and moved its sessions away and back. A node that
 * stays a block behind for stallMs is still stalled. Real anvil nodes in lockstep; one is held back
 * for a moment to make the order in which they get the block certain.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { devnetGatewayForFile } from '../support/devnet-gateway.js';
import { sleep, waitUntil } from '../support/stream-recorder.js';

const STALL_MS = 1_000;

const fixture = devnetGatewayForFile(2, { config: { health: { stallMs: STALL_MS, probeIntervalMs: 200, maxLagBlocks: 5 } }, traffic: false });
const notUsable = (name: string): number => fixture.evmux.logs.filter((line) => line['upstream'] === name && line['msg'] === 'upstream not usable').length;

test('after a quiet spell longer than stallMs, a node that gets the next block a moment late is not stalled', async () => {
  const { devnet, evmux } = fixture;
  await devnet.mine();
  await waitUntil('both nodes usable', async () => (await evmux.metric('evmux_upstream_up', { upstream: 'node1' })) === 1 && (await evmux.metric('evmux_upstream_up', { upstream: 'node0' })) === 1, 5_000);
  const before = notUsable('node1');
  await sleep(STALL_MS * 1.5);
  devnet.hold(1);
  await devnet.mine();
  await sleep(300);
  await devnet.release(1);
  await sleep(STALL_MS);
  assert.equal(notUsable('node1'), before, `node1 taken out: ${JSON.stringify(evmux.logs.filter((line) => line['upstream'] === 'node1' && line['msg'] === 'upstream not usable'))}`);
});

test('a node a block behind for stallMs is stalled', async () => {
  const { devnet, evmux } = fixture;
  devnet.hold(1);
  await devnet.mine();
  await waitUntil('node1 marked stalled', () => Promise.resolve(evmux.logs.some((line) => line['upstream'] === 'node1' && line['msg'] === 'upstream not usable' && line['stalled'] === true)), STALL_MS * 4);
  await devnet.release(1);
});
