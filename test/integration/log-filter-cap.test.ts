/**
 * `subscriptions.maxLogFiltersPerUpstream`: a client cannot make evmux hold more distinct logs
 * filters on a node than the cap. A filter already held is shared at no cost; a new one past the
 * cap gets -32005 naming the setting, is counted, and leaves the connection usable; room comes
 * back when a filter's grace period ends. One address holds a share of its own at most
 * (limits.maxLogFiltersPerIp), so it cannot take the whole cap.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeNode } from '../support/fake-node.js';
import { startGateway } from '../support/gateway.js';
import { sumSamples } from '../support/prom-text.js';
import { StreamClient, waitUntil } from '../support/stream-recorder.js';

const address = (n: number): string => `0x${n.toString(16).padStart(40, '0')}`;

test('distinct logs filters past the cap are refused with -32005; shared ones are not; room comes back after the grace period', async (t) => {
  const node = await FakeNode.start();
  t.after(() => node.close());
  const evmux = await startGateway([node.url], { subscriptions: { maxLogFiltersPerUpstream: 3, gracePeriodMs: 300 } });
  t.after(() => evmux.close());
  const client = await StreamClient.open(evmux.wsUrl, 'client');
  t.after(() => client.close());
  const other = await StreamClient.open(evmux.wsUrl, 'other');
  t.after(() => other.close());

  const held = await Promise.all([1, 2, 3].map((n) => client.subscribe(['logs', { address: address(n) }])));
  const refused = await client.request('eth_subscribe', ['logs', { address: address(4) }]);
  assert.deepEqual(refused['error'], {
    code: -32005,
    message: 'too many distinct logs filters on this node: at most 3 (subscriptions.maxLogFiltersPerUpstream); subscribe to a filter already in use or try again later',
  });
  assert.equal(typeof (await other.subscribe(['logs', { address: address(2) }])), 'string', 'a filter already held is shared');
  assert.equal(typeof (await client.subscribe(['newHeads'])), 'string', 'other kinds are not counted');
  assert.ok((await client.request('eth_blockNumber', []))['result'] !== undefined, 'the connection stays usable');
  assert.equal(sumSamples((await evmux.get('/metrics')).body, 'evmux_client_rejections_total', { reason: 'log_filters' }), 1);
  await waitUntil('the node holds three logs subscriptions and a newHeads one', () => node.stats.liveSubscriptions === 4, 2000);

  assert.equal((await client.request('eth_unsubscribe', [held[0]]))['result'], true);
  // The released filter lingers for its grace period (a client that comes back finds it), then goes.
  assert.equal((await client.request('eth_subscribe', ['logs', { address: address(4) }]))['error'] !== undefined, true, 'refused while it lingers');
  await waitUntil('the filter released', () => node.stats.liveSubscriptions === 3, 3000);
  assert.equal(typeof (await client.subscribe(['logs', { address: address(4) }])), 'string', 'room again');
});

test('one address holds at most limits.maxLogFiltersPerIp distinct filters over all its connections; other addresses keep theirs', async (t) => {
  const node = await FakeNode.start();
  t.after(() => node.close());
  const evmux = await startGateway([node.url], { limits: { maxLogFiltersPerIp: 2 } });
  t.after(() => evmux.close());
  const open = async (label: string, from: string): Promise<StreamClient> => {
    const client = await StreamClient.open(evmux.wsUrl, label, from);
    t.after(() => client.close());
    return client;
  };
  const first = await open('first', '127.0.0.1');
  const second = await open('second', '127.0.0.1');
  const elsewhere = await open('elsewhere', '127.0.0.2');

  const held = [await first.subscribe(['logs', { address: address(1) }]), await second.subscribe(['logs', { address: address(2) }])];
  const refused = await second.request('eth_subscribe', ['logs', { address: address(3) }]);
  assert.deepEqual(refused['error'], {
    code: -32005,
    message: 'too many distinct logs filters from 127.0.0.1: at most 2 (limits.maxLogFiltersPerIp); subscribe to one it already holds, or unsubscribe one first',
  });
  assert.equal(typeof (await second.subscribe(['logs', { address: address(1) }])), 'string', 'a filter the address holds costs nothing more');
  assert.equal(typeof (await elsewhere.subscribe(['logs', { address: address(3) }])), 'string', 'another address has a share of its own');
  assert.equal(sumSamples((await evmux.get('/metrics')).body, 'evmux_client_rejections_total', { reason: 'log_filters_per_ip' }), 1);

  assert.equal((await first.request('eth_unsubscribe', [held[0]]))['result'], true);
  assert.ok((await second.request('eth_subscribe', ['logs', { address: address(4) }]))['error'] !== undefined, 'filter 1 is still held by the second connection');
  second.close();
  await waitUntil('the second connection gone', async () => JSON.parse((await evmux.get('/status')).body).clients === 2, 2000);
  assert.equal(typeof (await first.subscribe(['logs', { address: address(4) }])), 'string', 'room once its connections let go');
});
