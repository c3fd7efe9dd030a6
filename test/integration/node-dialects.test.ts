/**
 * Nodes other than anvil word the same conditions in their own ways, played by fake nodes: what
 * one node cannot answer and another can must reach the one that can, whatever the wording (geth,
 * Nethermind, reth, Erigon, Besu), and the client must get the node's own answer otherwise.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { FakeNode, FakeRpcError, type FakeNodeOptions } from '../support/fake-node.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { rpcAnswer } from '../support/node-rpc.js';
import { sumSamples } from '../support/prom-text.js';
import { Probe } from '../support/ws-probe.js';
import { waitUntil } from '../support/stream-recorder.js';

const CALLS = 12;

/** Two fake nodes of one chain named node0 and node1, evmux in front, both usable. */
async function pair(t: TestContext, options: FakeNodeOptions = {}): Promise<{ nodes: [FakeNode, FakeNode]; evmux: TestGateway }> {
  const start = (): Promise<FakeNode> => FakeNode.start({ seed: 'dialects', ...options });
  const nodes = [await start(), await start()] as [FakeNode, FakeNode];
  t.after(() => Promise.all(nodes.map((node) => node.close())));
  const evmux = await startGateway(nodes.map((node) => node.url), { health: { probeIntervalMs: 60_000 } });
  t.after(() => evmux.close());
  await waitUntil('both nodes usable', async () => (JSON.parse((await evmux.get('/status')).body) as { upstreams: Array<{ usable: boolean }> }).upstreams.every((u) => u.usable), 5_000);
  return { nodes, evmux };
}

/** `CALLS` calls at once; what each answered. */
async function answers(evmux: TestGateway, method: string, params: unknown[]): Promise<Array<Awaited<ReturnType<typeof rpcAnswer>>>> {
  return Promise.all(Array.from({ length: CALLS }, () => rpcAnswer(evmux.httpUrl, method, params)));
}

const PRUNED: Array<[string, number, string]> = [
  ['geth, hash scheme', -32000, 'missing trie node 288259a570829264e76b2c58d4369b5a94f086018dc4409d1d0131405c5d1975 (path )'],
  ['geth, path scheme', -32000, 'historical state not available in path scheme yet'],
  ['Nethermind', -32002, 'No state available for block 0x3f9e020290502d1d41f4b5519e7d456f0935dea980ec310935206cac8239117e (16)'],
  ['reth', -32000, 'state at block #16 is pruned'],
  ['Erigon 3', -32000, 'seek with txNum=1962853355 but data before txNum=2662500000 is not available'],
];

for (const [client, code, message] of PRUNED) {
  test(`state a full node has pruned (${client}: "${message.slice(0, 40)}…") is read from the archive node beside it`, async (t) => {
    const { nodes, evmux } = await pair(t);
    nodes[0].handle('eth_getBalance', () => {
      throw new FakeRpcError(code, message);
    });
    nodes[1].handle('eth_getBalance', () => '0xde0b6b3a7640000');
    const got = await answers(evmux, 'eth_getBalance', ['0x00000000219ab540356cBB839Cbe05303d7705Fa', '0x10']);
    assert.deepEqual(got.filter((answer) => answer.result !== '0xde0b6b3a7640000'), [], 'every call answered by the archive node');
  });
}

test('a method one node does not have (an older version: -32601) is served by the node that has it', async (t) => {
  const { nodes, evmux } = await pair(t);
  const missing = (): never => {
    throw new FakeRpcError(-32601, 'the method eth_getBlockReceipts does not exist/is not available');
  };
  nodes[0].handle('eth_getBlockReceipts', missing);
  nodes[1].handle('eth_getBlockReceipts', () => []);
  const got = await answers(evmux, 'eth_getBlockReceipts', ['0x10']);
  assert.deepEqual(got.filter((answer) => answer.error !== undefined), [], 'every call answered by node1');

  // When no node has it, the client gets the node's own word.
  nodes[1].handle('eth_getBlockReceipts', missing);
  assert.deepEqual((await rpcAnswer(evmux.httpUrl, 'eth_getBlockReceipts', ['0x10'])).error?.code, -32601);
});

test("a logs subscription catching up over more logs than the node serves at once (reth: 'query exceeds max results') gets them block by block", async (t) => {
  const CAP = 1_000;
  const PER_BLOCK = 100;
  const GAP = 15;
  const ADDRESS = '0x00000000000000000000000000000000000a11ce';
  const TOPIC = '0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef';
  const nodes = [await FakeNode.start({ seed: 'reth' }), await FakeNode.start({ seed: 'reth' })];
  t.after(() => Promise.all(nodes.map((node) => node.close())));
  let refusals = 0;
  for (const node of nodes) {
    // reth's eth_getLogs: a range with more than CAP logs is refused, naming the range that fits.
    node.handle('eth_getLogs', (params) => {
      const filter = params[0] as { fromBlock?: string; toBlock?: string; blockHash?: string };
      const numbers: bigint[] = [];
      if (filter.blockHash !== undefined) {
        const header = node.headerByHash(filter.blockHash);
        if (header !== undefined) numbers.push(header.number);
      } else {
        const height = (tag: string | undefined): bigint => (tag === undefined || tag === 'latest' ? node.head.number : BigInt(tag));
        for (let n = height(filter.fromBlock); n <= height(filter.toBlock); n++) numbers.push(n);
      }
      const logs = numbers.flatMap((n) => node.logsAt(n));
      if (logs.length > CAP) {
        refusals++;
        throw new FakeRpcError(-32602, `query exceeds max results ${CAP}, retry with the range ${numbers[0]}-${numbers[0]! + BigInt(CAP / PER_BLOCK) - 1n}`);
      }
      return logs;
    });
  }
  const evmux = await startGateway(nodes.map((node) => node.url));
  t.after(() => evmux.close());
  const mine = (blocks: number): void => {
    for (let block = 0; block < blocks; block++) {
      for (let i = 0; i < PER_BLOCK; i++) for (const node of nodes) node.addLog({ address: ADDRESS, topics: [TOPIC] });
      for (const node of nodes) node.advance(1);
    }
  };
  const client = await Probe.open(evmux.wsUrl, t);
  const perBlock = new Map<string, number>();
  client.ws.on('message', (data) => {
    const frame = JSON.parse(String(data)) as { method?: string; params?: { result: { blockNumber: string } } };
    if (frame.method !== 'eth_subscription' || frame.params === undefined) return;
    const number = frame.params.result.blockNumber;
    perBlock.set(number, (perBlock.get(number) ?? 0) + 1);
  });
  await client.call('eth_subscribe', ['logs', { address: ADDRESS }]);
  mine(2);
  await waitUntil('the live logs', () => [...perBlock.values()].reduce((a, b) => a + b, 0) === 2 * PER_BLOCK, 5_000);

  // Both nodes out of reach while GAP blocks pass (a partition), then back, and the chain goes on.
  for (const node of nodes) {
    node.acceptConnections = false;
    node.dropConnections();
  }
  mine(GAP);
  for (const node of nodes) node.acceptConnections = true;
  await sleep(1_500);
  mine(3);
  await waitUntil('every log of the missed and the new blocks', () => perBlock.size === 2 + GAP + 3, 20_000);
  assert.ok(refusals > 0, 'the node refused the whole missed range');
  assert.deepEqual([...perBlock.values()], Array(2 + GAP + 3).fill(PER_BLOCK), 'each block once, all of its logs');
});

test("a request larger than the nodes take (Besu closes its socket with 1009 past 1 MiB) fails naming the limit, and no node leaves rotation", async (t) => {
  const FRAME_LIMIT = 64 * 1024;
  const { nodes, evmux } = await pair(t, { maxFrameBytes: FRAME_LIMIT });

  // A subscriber, whose stream would move were its node taken out of rotation.
  const watcher = await Probe.open(evmux.wsUrl, t);
  await watcher.call('eth_subscribe', ['newHeads']);
  // Another client's calls go on beside it all the while.
  let polling = true;
  const polls: Array<Promise<Awaited<ReturnType<typeof rpcAnswer>>>> = [];
  const poller = (async () => {
    while (polling) {
      polls.push(rpcAnswer(evmux.httpUrl, 'eth_blockNumber', []));
      await sleep(5);
    }
  })();
  const large = [{ to: '0x00000000219ab540356cBB839Cbe05303d7705Fa', data: `0x${'ab'.repeat(FRAME_LIMIT)}` }, 'latest'];
  const tries = [];
  for (let i = 0; i < 3; i++) tries.push(await rpcAnswer(evmux.httpUrl, 'eth_call', large));
  polling = false;
  await poller;

  for (const answer of tries) assert.match(answer.error?.message ?? JSON.stringify(answer), /1009 message too big/);
  const failedPolls = (await Promise.all(polls)).filter((answer) => answer.error !== undefined);
  assert.deepEqual(failedPolls, [], "the other client's calls");
  assert.deepEqual(nodes.map((node) => node.stats.closedForFrameSize), [1, 1], 'each node closed a socket on it once: then evmux knew');
  assert.equal(sumSamples((await evmux.get('/metrics')).body, 'evmux_failovers_total'), 0, 'no stream moved: no node left rotation');
  const status = JSON.parse((await evmux.get('/status')).body) as { upstreams: Array<{ usable: boolean; healthy: boolean }> };
  assert.deepEqual(status.upstreams.map((u) => [u.usable, u.healthy]), [[true, true], [true, true]]);
});
