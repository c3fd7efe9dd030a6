/**
 * Nodes other than anvil word the same conditions in their own ways, played by fake nodes: what
 * one node cannot answer and another can must reach the one that can, whatever the wording (geth,
 * Nethermind, reth, Erigon, Besu), and the client must get the node's own answer otherwise.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { FakeNode, FakeRpcError } from '../support/fake-node.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { rpcAnswer } from '../support/node-rpc.js';
import { waitUntil } from '../support/stream-recorder.js';

const CALLS = 12;

/** Two fake nodes of one chain named node0 and node1, evmux in front, both usable. */
async function pair(t: TestContext): Promise<{ nodes: [FakeNode, FakeNode]; evmux: TestGateway }> {
  const nodes = [await FakeNode.start({ seed: 'dialects' }), await FakeNode.start({ seed: 'dialects' })] as [FakeNode, FakeNode];
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
