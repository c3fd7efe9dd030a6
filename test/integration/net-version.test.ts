/**
 * viem's WebSocket transport keeps its socket open by sending `net_version` (with id null) every
 * 30 s. Once a node has given evmux the network id, evmux answers it itself: thousands of viem
 * clients cost the nodes no calls. The id is learned only from a node that passed the chain check.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { createPublicClient, webSocket } from 'viem';
import { FakeNode } from '../support/fake-node.js';
import { startGateway } from '../support/gateway.js';
import { waitUntil } from '../support/stream-recorder.js';
import { Probe } from '../support/ws-probe.js';

async function node(t: TestContext, chainId: number): Promise<FakeNode> {
  const started = await FakeNode.start({ chainId });
  t.after(() => started.close());
  return started;
}

await test("viem's keep-alive net_version is answered by evmux, with the node's network id, at no node's cost", async (t) => {
  const fake = await node(t, 10);
  const evmux = await startGateway([fake.url]);
  t.after(() => evmux.close());
  await waitUntil('the network id learned', () => evmux.gateway.pool.chain.netVersion !== undefined, 5000);
  const asked = fake.stats.requests.get('net_version');
  assert.ok(asked !== undefined && asked >= 1, 'learned from the node');

  // The frame viem sends, as it sends it.
  const probe = await Probe.open(evmux.wsUrl, t);
  for (let i = 0; i < 20; i++) {
    probe.send('{"jsonrpc":"2.0","id":null,"method":"net_version","params":[]}');
    const reply = await probe.waitFor((frame) => frame.raw.includes('"result"'));
    assert.deepEqual(reply.json, { jsonrpc: '2.0', id: null, result: '10' });
  }
  const http = await fetch(evmux.httpUrl, { method: 'POST', body: '{"jsonrpc":"2.0","id":7,"method":"net_version","params":[]}' });
  assert.deepEqual(await http.json(), { jsonrpc: '2.0', id: 7, result: '10' });

  // A real viem client with a short keep-alive: its pings are answered, its calls go on.
  const client = createPublicClient({ transport: webSocket(evmux.wsUrl, { keepAlive: { interval: 50 }, reconnect: false }) });
  t.after(async () => (await client.transport.getRpcClient()).close());
  assert.equal(await client.getChainId(), 10);
  await new Promise((resolve) => setTimeout(resolve, 600));
  assert.equal(await client.getBlockNumber(), 100n);
  assert.equal(fake.stats.requests.get('net_version'), asked, 'no client net_version reached the node');
});

await test('a node of another chain does not give evmux its network id', async (t) => {
  const wrong = await node(t, 5);
  const evmux = await startGateway([{ name: 'wrong', url: wrong.url }], { chainId: 1 }, { waitReady: false });
  t.after(() => evmux.close());
  await waitUntil('the wrong node refused', async () => (await evmux.get('/status')).body.includes('serves chain 5'), 5000);
  assert.equal(evmux.gateway.pool.chain.netVersion, undefined);
  assert.equal(wrong.stats.requests.get('net_version'), undefined);
});
