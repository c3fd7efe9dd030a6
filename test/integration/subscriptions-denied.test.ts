/**
 * methods.allow and methods.deny hold for eth_subscribe and eth_unsubscribe as for every other
 * method: an operator can run an endpoint for plain calls only.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeNode } from '../support/fake-node.js';
import { startGateway } from '../support/gateway.js';
import { StreamClient } from '../support/stream-recorder.js';

test('eth_subscribe and eth_unsubscribe in methods.deny are refused, and no subscription is made', async (t) => {
  const node = await FakeNode.start({ seed: 'subscriptions-denied' });
  t.after(() => node.close());
  const evmux = await startGateway([node.url], { methods: { allow: ['eth_*'], deny: ['eth_subscribe', 'eth_unsubscribe'] } });
  t.after(() => evmux.close());
  const client = await StreamClient.open(evmux.wsUrl, 'client');
  t.after(() => client.close());

  const subscribe = await client.request('eth_subscribe', ['newHeads']);
  assert.deepEqual(subscribe['error'], { code: -32601, message: 'the method eth_subscribe does not exist/is not available: not allowed on this gateway' });
  const unsubscribe = await client.request('eth_unsubscribe', ['0x01']);
  assert.deepEqual(unsubscribe['error'], { code: -32601, message: 'the method eth_unsubscribe does not exist/is not available: not allowed on this gateway' });
  assert.equal(await evmux.metric('evmux_client_subscriptions', { kind: 'newHeads' }), 0);
  assert.equal(node.stats.liveSubscriptions, 0);
  // Plain calls go on as before on the same connection.
  assert.equal(typeof (await client.request('eth_blockNumber', []))['result'], 'string');
});
