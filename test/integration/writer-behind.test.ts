/**
 * A wallet's reads of its own transaction, still pending, when the node that took it (its writer
 * node) has fallen a block behind the others: nodes that are not peered (anvil's are not) have it
 * in that node's pool only. The transaction by hash, and reads of the "pending" block (a balance, an
 * eth_call, a gas estimate made after the send, as for an approve and then a swap), must come from
 * that node, not from the nodes ahead that never saw it.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createWalletClient, http } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { anvil } from 'viem/chains';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { rpc, rpcAnswer } from '../support/node-rpc.js';
import { waitUntil } from '../support/stream-recorder.js';

let devnet: LockstepDevnet;
let evmux: TestGateway;
/** the pending transaction, its recipient, and the index of the node that took it */
let sent: { hash: string; to: string; writer: number };

const READS = 6;

before(async () => {
  devnet = await LockstepDevnet.start({ nodes: 2, blockTimeMs: 0, traffic: false });
  await devnet.mine(1);
  evmux = await startGateway(devnet.nodes.map((node) => node.wsUrl), { health: { probeIntervalMs: 200 } });
  const to = '0x00000000000000000000000000000000000b0b01';
  const wallet = createWalletClient({ account: privateKeyToAccount(devnet.testAccountKey), chain: anvil, transport: http(evmux.httpUrl) });
  const hash = await wallet.sendTransaction({ to, value: 7n });
  const found = await Promise.all(devnet.nodes.map((node) => rpc<unknown>(node.httpUrl, 'eth_getTransactionByHash', [hash])));
  const writer = found.findIndex((tx) => tx !== null);
  assert.ok(writer >= 0 && found.filter((tx) => tx !== null).length === 1, 'one node has the transaction');
  sent = { hash, to, writer };
  // The writer node falls a block behind; the block the other node mines lacks the transaction.
  devnet.hold(writer);
  await devnet.mine(1);
  const ahead = String(devnet.blockNumber);
  await waitUntil('evmux sees the writer node a block behind', async () => {
    const { upstreams } = JSON.parse((await evmux.get('/status')).body) as { upstreams: Array<{ usable: boolean; head: string }> };
    return upstreams.every((u) => u.usable) && upstreams.filter((u) => u.head === ahead).length === 1;
  }, 10_000);
});

after(async () => {
  await evmux?.close();
  await devnet?.close();
});

test('the transaction by hash comes from the writer node, which alone has it', async () => {
  const answers = await Promise.all(Array.from({ length: READS }, () => rpcAnswer(evmux.httpUrl, 'eth_getTransactionByHash', [sent.hash])));
  assert.deepEqual(answers.map((answer) => (answer.result as { hash?: string } | null)?.hash ?? JSON.stringify(answer)), Array(READS).fill(sent.hash));
});

test("reads of the 'pending' block come from the writer node: they see the client's transaction", async () => {
  const writerUrl = devnet.nodes[sent.writer]!.httpUrl;
  const reads: Array<[string, unknown[]]> = [
    ['eth_getBalance', [sent.to, 'pending']],
    ['eth_call', [{ to: sent.to, data: '0x' }, 'pending']],
    ['eth_getBlockTransactionCountByNumber', ['pending']],
  ];
  for (const [method, params] of reads) {
    const expected = await rpc<unknown>(writerUrl, method, params);
    const answers = await Promise.all(Array.from({ length: READS }, () => rpcAnswer(evmux.httpUrl, method, params)));
    assert.deepEqual(answers.map((answer) => answer.result), Array(READS).fill(expected), `${method} at pending: as the writer node answers`);
  }
  assert.equal(await rpc<string>(writerUrl, 'eth_getBalance', [sent.to, 'pending']), '0x7', 'the writer node counts the pending transfer');
});
