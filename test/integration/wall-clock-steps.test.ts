/**
 * The wall clock steps while evmux runs (NTP correcting it, a VM resumed, an operator setting the
 * date): every duration and deadline evmux judges by is timed on the monotonic clock, so none
 * moves with the step. Before, a forward step of 10 minutes forgot every filter (polled every
 * second) and marked nodes stalled, and a backward step of an hour kept a returning node's
 * sessions away (hold-down), an open breaker open and a silent stream undetected for that hour.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeNode } from '../support/fake-node.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { rpc } from '../support/node-rpc.js';
import { StreamClient, waitUntil } from '../support/stream-recorder.js';

const HOLD_DOWN_MS = 500;

async function status(evmux: TestGateway): Promise<{ filters: number; upstreams: Array<{ name: string; usable: boolean; stalled: boolean }> }> {
  return JSON.parse((await evmux.get('/status')).body) as { filters: number; upstreams: Array<{ name: string; usable: boolean; stalled: boolean }> };
}

test('wall-clock steps forward and back: filters are kept, no node is judged, a returning node gets its sessions back after the hold-down', { timeout: 60_000 }, async (t) => {
  const realNow = Date.now.bind(Date);
  let offset = 0;
  t.mock.method(Date, 'now', () => realNow() + offset);
  const nodes = await Promise.all([0, 1].map(() => FakeNode.start({ seed: 'wall-clock', blockTimeMs: 200 })));
  t.after(() => Promise.all(nodes.map((node) => node.close())));
  for (const node of nodes) {
    node.handle('eth_newBlockFilter', () => '0x1');
    node.handle('eth_getFilterChanges', () => []);
  }
  const evmux = await startGateway(
    nodes.map((node) => node.url),
    { subscriptions: { holdDownMs: HOLD_DOWN_MS, sessionKey: { source: 'query', name: 'session' } } },
  );
  t.after(() => evmux.close());
  await waitUntil('both nodes usable', async () => (await status(evmux)).upstreams.every((u) => u.usable), 5000);

  const filter = await rpc<string>(evmux.httpUrl, 'eth_newBlockFilter', []);
  assert.equal((await status(evmux)).filters, 1);
  const from = evmux.logs.length;
  offset = 10 * 60_000;
  for (let i = 0; i < 5; i++) {
    assert.ok(Array.isArray(await rpc<unknown>(evmux.httpUrl, 'eth_getFilterChanges', [filter])), 'the filter polled after the step');
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  const after = await status(evmux);
  assert.equal(after.filters, 1, 'a filter polled every 300 ms is not forgotten for a step of the clock');
  assert.deepEqual(after.upstreams.map((u) => [u.usable, u.stalled]), [[true, false], [true, false]]);
  assert.deepEqual(evmux.logs.slice(from).filter((line) => line['msg'] === 'upstream not usable'), [], 'no node judged for the step');

  // The node holding a client's session drops and comes back, and the clock steps an hour back
  // during its hold-down: the session returns after holdDownMs, not after the hour.
  const client = await StreamClient.open(`${evmux.wsUrl}?session=wallet`, 'wallet');
  t.after(() => client.close());
  await client.first(await client.subscribe(['newHeads']));
  const home = nodes.find((node) => node.stats.liveSubscriptions > 0)!;
  const other = nodes.find((node) => node !== home)!;
  const homeIndex = nodes.indexOf(home);
  home.dropConnections();
  await waitUntil('the session on the other node', () => other.stats.liveSubscriptions > 0, 5000);
  await waitUntil('the node back', async () => (await status(evmux)).upstreams[homeIndex]!.usable, 5000);
  offset = -60 * 60_000;
  await waitUntil('the session back home after the hold-down', () => home.stats.liveSubscriptions > 0, HOLD_DOWN_MS + 5000);
});
