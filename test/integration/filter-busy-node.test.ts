/**
 * A filter poll its node's full queue refuses before it is sent: the node is busy, not gone, and
 * so is not its filter. The client hears that the node is busy and polls again; the filter stays
 * where it is (it was moved as if its node had died, costing an overloaded node three more calls,
 * and with no other node the client was told its node was unavailable).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeNode } from '../support/fake-node.js';
import { startGateway } from '../support/gateway.js';
import { waitUntil } from '../support/stream-recorder.js';

let nextId = 1;
async function call(url: string, method: string, params: unknown[] = []): Promise<Record<string, unknown>> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: nextId++, method, params }) });
  return (await response.json()) as Record<string, unknown>;
}

test('a poll refused by a busy node is answered "busy", and its filter is not moved', async (t) => {
  const node = await FakeNode.start();
  t.after(() => node.close());
  node.handle('eth_getFilterChanges', () => []);
  const evmux = await startGateway([{ name: 'node0', url: node.url, maxConcurrency: 1, maxQueue: 0 }]);
  t.after(() => evmux.close());
  await waitUntil('the node usable', async () => (await evmux.metric('evmux_upstream_up', { upstream: 'node0' })) === 1, 5_000);
  let nodeIds = 0;
  node.handle('eth_newBlockFilter', () => `0x${(++nodeIds).toString(16)}`);
  const ids = [(await call(evmux.httpUrl, 'eth_newBlockFilter'))['result'], (await call(evmux.httpUrl, 'eth_newBlockFilter'))['result']] as string[];
  assert.ok(ids.every((id) => typeof id === 'string'), JSON.stringify(ids));
  node.latencyMs = 300;
  const polls = await Promise.all(ids.map((id) => call(evmux.httpUrl, 'eth_getFilterChanges', [id])));
  node.latencyMs = 0;
  const refused = polls.find((reply) => reply['error'] !== undefined);
  assert.ok(refused !== undefined, 'one poll found the node busy');
  assert.match(String((refused['error'] as { message: string }).message), /is busy/);
  assert.equal((await evmux.metric('evmux_filter_moves_total', { reason: 'node_down' })) ?? 0, 0, 'the filter was not moved');
  const again = await call(evmux.httpUrl, 'eth_getFilterChanges', [ids[polls.indexOf(refused)]]);
  assert.ok(Array.isArray(again['result']), JSON.stringify(again));
});
