/**
 * A newHeads subscription made while its node is below the stream's tip after a rewind (a reorg to
 * a shorter branch, evm_revert): the running stream waits until the new branch is as high as the
 * old one, but the new subscription starts at the node's head, not at a block the node no longer
 * has. Once the two streams deliver the same head they are one again: every later head comes once.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeNode } from '../support/fake-node.js';
import { startGateway } from '../support/gateway.js';
import { Probe } from '../support/ws-probe.js';

interface Head {
  number: string;
  hash: string;
  parentHash: string;
}

test('a newHeads subscriber that joins after its node rewound starts at the node\'s head', async (t) => {
  const node = await FakeNode.start({ seed: 'rewind-greeting' });
  t.after(() => node.close());
  const evmux = await startGateway([node.url]);
  t.after(() => evmux.close());
  const hashAt = (number: bigint): string => node.header(number)!.hash;
  const groups = async (): Promise<number> => {
    const status = JSON.parse((await evmux.get('/status')).body) as { upstreams: { subscriptions: { topics: { kind: string; groups: number }[] } }[] };
    return status.upstreams[0]!.subscriptions.topics.find((topic) => topic.kind === 'newHeads')!.groups;
  };

  const before = await Probe.open(evmux.wsUrl, t);
  const early = await before.call('eth_subscribe', ['newHeads']);
  const next = async (client: Probe, id: unknown): Promise<Head> => (await client.notification(id, 3000)) as unknown as Head;
  assert.equal((await next(before, early)).number, '0x64');
  node.advance(8);
  for (let n = 101; n <= 108; n++) assert.equal((await next(before, early)).number, `0x${n.toString(16)}`);

  node.reorg(8, -7); // back to 101, on a new block
  const branchStart = hashAt(101n);
  const deadline = Date.now() + 10_000;
  while ((await before.call('eth_blockNumber')) !== '0x65') {
    assert.ok(Date.now() < deadline, 'eth_blockNumber never followed the node down to 101');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }

  const after = await Probe.open(evmux.wsUrl, t);
  const late = await after.call('eth_subscribe', ['newHeads']);
  const greeting = await next(after, late);
  assert.deepEqual([greeting.number, greeting.hash], ['0x65', branchStart], 'greeted with the node\'s head, not the old tip 108');

  node.advance(1);
  const second = await next(after, late);
  assert.deepEqual([second.number, second.parentHash], ['0x66', branchStart]);
  await before.expectNone((frame) => frame.raw.includes(early as string), 300);
  assert.equal(await groups(), 2, 'the two streams apart while they deliver different heads');

  // The new branch passes the old tip: the first stream gets it from the fork point, the second goes on.
  node.advance(8); // to 110
  const reorged: Head[] = [];
  for (let n = 101; n <= 110; n++) reorged.push(await next(before, early));
  assert.deepEqual(reorged.map((head) => head.hash), [...Array(10).keys()].map((i) => hashAt(101n + BigInt(i))), 'the new branch from the fork point, once');
  const onward: Head[] = [];
  for (let n = 103; n <= 110; n++) onward.push(await next(after, late));
  assert.deepEqual(onward.map((head) => head.hash), [...Array(8).keys()].map((i) => hashAt(103n + BigInt(i))), 'the second stream goes on, once');

  // One stream again: the next head comes once to each.
  assert.equal(await groups(), 1, 'merged once both delivered 110');
  node.advance(1);
  assert.equal((await next(before, early)).hash, hashAt(111n));
  assert.equal((await next(after, late)).hash, hashAt(111n));
  await before.expectNone((frame) => frame.raw.includes(early as string), 300);
  await after.expectNone((frame) => frame.raw.includes(late as string), 1);
});
