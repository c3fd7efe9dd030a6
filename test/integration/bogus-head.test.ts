/**
 * One eth_blockNumber answer far beyond the chain (a broken node, a proxy that mixed up answers)
 * must not stand as that node's head: believed, it made every other node "lagging", took them out
 * of rotation, and was handed to every client as the chain's head, until the node's socket closed.
 * Fake nodes, to give the one wrong answer.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { FakeNode } from '../support/fake-node.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { rpcAnswer } from '../support/node-rpc.js';
import { sleep, StreamClient, waitUntil } from '../support/stream-recorder.js';

const BOGUS = '0x10000000';

/** Two fake nodes of one chain at 100, evmux in front, both usable; `usable` counts the usable ones. */
async function twoNodes(t: TestContext): Promise<{ nodes: FakeNode[]; evmux: TestGateway; usable: () => Promise<number> }> {
  const nodes = await Promise.all([0, 1].map(() => FakeNode.start({ seed: 'bogus-head', startHeight: 100 })));
  t.after(() => Promise.all(nodes.map((node) => node.close())));
  const evmux = await startGateway(nodes.map((node) => node.url));
  t.after(() => evmux.close());
  const usable = async (): Promise<number> => (JSON.parse((await evmux.get('/readyz')).body) as { usableUpstreams: number }).usableUpstreams;
  await waitUntil('both nodes usable', async () => (await usable()) === 2, 10_000);
  return { nodes, evmux, usable };
}

for (const whose of ['a client call', 'a probe'] as const) {
  test(`one absurd eth_blockNumber answer to ${whose}: the other node stays usable and clients see the real head`, async (t) => {
    const { nodes, evmux, usable } = await twoNodes(t);
    // The next eth_blockNumber node0 is asked (whoever asks) gets the absurd answer, once.
    const liar = nodes[0]!;
    const before = liar.stats.requests.get('eth_blockNumber') ?? 0;
    liar.handle('eth_blockNumber', () => {
      liar.unhandle('eth_blockNumber');
      return BOGUS;
    });
    if (whose === 'a client call') {
      // Calls alternate between the nodes: within a few, one reaches node0 before its next probe.
      for (let i = 0; i < 4 && (liar.stats.requests.get('eth_blockNumber') ?? 0) === before; i++) await rpcAnswer(evmux.httpUrl, 'eth_blockNumber', []);
    }
    await waitUntil('node0 gave its absurd answer', () => (liar.stats.requests.get('eth_blockNumber') ?? 0) > before, 5000);
    // Within a probe interval or two (250 ms here) the view is right again.
    await sleep(800);
    assert.equal(await usable(), 2, 'both nodes usable');
    for (let i = 0; i < 6; i++) {
      const answer = await rpcAnswer(evmux.httpUrl, 'eth_blockNumber', []);
      assert.ok(BigInt(answer.result as string) < 1000n, `eth_blockNumber through evmux answered ${String(answer.result)}`);
    }
  });
}

test('a node whose answers are a block apart (backends behind a load balancer): eth_blockNumber through evmux never goes back', async (t) => {
  const node = await FakeNode.start({ seed: 'bogus-head-lb', startHeight: 100 });
  t.after(() => node.close());
  // Its newHeads come from the backend behind; eth_blockNumber, probes' too, from either.
  node.handle('eth_blockNumber', () => `0x${(node.head.number + (Math.random() < 0.5 ? 1n : 0n)).toString(16)}`);
  const evmux = await startGateway([node.url], { health: { probeIntervalMs: 100 } });
  t.after(() => evmux.close());
  const wentBack: string[] = [];
  let last = -1n;
  for (let poll = 1; poll <= 150; poll++) {
    const head = BigInt((await rpcAnswer(evmux.httpUrl, 'eth_blockNumber', [])).result as string);
    if (head < last) wentBack.push(`${last} → ${head}`);
    last = head;
    if (poll % 40 === 0) node.advance(1);
    await sleep(15);
  }
  assert.deepEqual(wentBack, [], 'eth_blockNumber went back');
});

test('one newHeads notification far above the chain: not delivered, and the stream, the head and the other node carry on', async (t) => {
  const { nodes, evmux, usable } = await twoNodes(t);
  const client = await StreamClient.open(evmux.wsUrl, 'client');
  t.after(() => client.close());
  const id = await client.subscribe(['newHeads']);
  const pinned = nodes.find((node) => node.stats.requests.get('eth_subscribe') !== undefined)!;
  for (const node of nodes) node.advance(1);
  await waitUntil('head 101 delivered', () => Promise.resolve(client.heads(id).some((head) => head.number === 101n)), 5_000);
  pinned.notify('newHeads', { number: BOGUS, hash: `0x${'ab'.repeat(32)}`, parentHash: `0x${'cd'.repeat(32)}` });
  for (let block = 0; block < 3; block++) {
    await sleep(100);
    for (const node of nodes) node.advance(1);
  }
  await waitUntil('head 104 delivered', () => Promise.resolve(client.heads(id).some((head) => head.number === 104n)), 5_000);
  assert.deepEqual(client.heads(id).map((head) => head.number).filter((number) => number >= 101n), [101n, 102n, 103n, 104n]);
  assert.equal(await usable(), 2, 'both nodes usable');
  assert.ok(BigInt((await rpcAnswer(evmux.httpUrl, 'eth_blockNumber', [])).result as string) < 1000n);
});
