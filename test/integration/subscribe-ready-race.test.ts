/**
 * evmux bug repro: a client subscription whose topic is released while subscribe() awaits
 * topic.ready() is answered with an id, counted in evmux_client_subscriptions, and never
 * receives anything. Run: copy into /work/main/test/integration/, then node --import tsx --test test/integration/subscribe-ready-race.test.ts
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { FakeNode } from '../support/fake-node.js';
import { startGateway } from '../support/gateway.js';

test('newHeads subscription made while the upstream eth_subscribe is slow gets its heads', async () => {
  const node = await FakeNode.start({});
  const evmux = await startGateway([node.url], { requestTimeoutMs: 5000, health: { probeTimeoutMs: 4000, failureThreshold: 10 } });
  const ws = new WebSocket(evmux.wsUrl);
  try {
    await new Promise((resolve) => ws.once('open', resolve));
    const frames: Array<Record<string, unknown>> = [];
    ws.on('message', (data) => frames.push(JSON.parse(String(data)) as Record<string, unknown>));
    // The upstream eth_subscribe takes longer than evmux's 1 s rebalance tick. Only it: the node
    // delays each request as it arrives, and the calls after it (the greeting's head) are prompt.
    const subscribes = (): number => node.stats.requests.get('eth_subscribe') ?? 0;
    const subscribesBefore = subscribes();
    const current = node.head;
    node.latencyMs = 1500;
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_subscribe', params: ['newHeads'] }));
    while (subscribes() === subscribesBefore) await sleep(5);
    node.latencyMs = 0;
    while (!frames.some((f) => f.id === 1)) await sleep(10);
    console.log('subscribe answer:', JSON.stringify(frames[0]));
    console.log('evmux_client_subscriptions{kind=newHeads} =', await evmux.metric('evmux_client_subscriptions', { kind: 'newHeads' }));
    console.log('/status topics:', JSON.stringify(JSON.parse((await evmux.get('/status')).body).upstreams[0].subscriptions));
    node.advance(3);
    const deadline = Date.now() + 3000;
    while (frames.filter((f) => f.method === 'eth_subscription').length < 4 && Date.now() < deadline) await sleep(10);
    await sleep(100); // anything more would show up now
    const heads = frames.filter((f) => f.method === 'eth_subscription').map((f) => (f.params as { result: { number: string; hash: string; parentHash: string } }).result);
    assert.deepEqual(heads.map((head) => BigInt(head.number)), [0n, 1n, 2n, 3n].map((k) => current.number + k), 'the head at subscribe time, then the three new heads');
    assert.equal(heads[0]!.hash, current.hash, 'the first notification is the current head');
    for (let i = 1; i < heads.length; i++) assert.equal(heads[i]!.parentHash, heads[i - 1]!.hash);
  } finally {
    ws.terminate();
    await evmux.close();
    await node.close();
  }
});
