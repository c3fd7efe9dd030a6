/**
 * The demo invites users to point any client at evmux: a transaction sent through it lands in one
 * node's pool, and the devnet (gossip on) must have every node mine it in the same block, keep it
 * there, and stay in lockstep. Also the ways a send can reach a node's block behind the devnet's
 * back: a held node, and a reorg of the block that has it.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { createPublicClient, createWalletClient, http, type Hex, type TransactionReceipt } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { anvil } from 'viem/chains';
import { startDemoDevnet } from '../../src/demo.js';
import { DEV_PRIVATE_KEYS } from '../../src/devnet/dev-accounts.js';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { rpc } from '../support/node-rpc.js';
import { waitUntil } from '../support/stream-recorder.js';

/** Dev accounts the devnet never sends from (0 signs its traffic, 1 receives it). */
const SENDERS = [DEV_PRIVATE_KEYS[2], DEV_PRIVATE_KEYS[3]].map((key) => privateKeyToAccount(key));
const DEAD = '0x000000000000000000000000000000000000dEaD';

interface NodeReceipt {
  blockHash: Hex;
  blockNumber: Hex;
}

/** The devnet's log lines, to check that nothing went wrong in it (warn and up). */
function devnetLog(): { logger: pino.Logger; troubles(): string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  return {
    logger: pino({ level: 'info' }, sink),
    troubles: () => lines.filter((line) => (JSON.parse(line) as { level: number }).level >= 40),
  };
}

/** Each node's receipt of `hash`: the same block on every node, or the assertion says which differ. */
async function assertMinedAlike(devnet: LockstepDevnet, hash: Hex): Promise<NodeReceipt> {
  const receipts = await Promise.all(devnet.nodes.map((node) => rpc<NodeReceipt | null>(node.httpUrl, 'eth_getTransactionReceipt', [hash])));
  const first = receipts[0];
  assert.ok(first !== null && first !== undefined, `node0 has ${hash}`);
  receipts.forEach((receipt, i) => assert.equal(receipt?.blockHash, first.blockHash, `node${i}: block of ${hash}`));
  return first;
}

/** Every node has the same block at every height up to `height`. */
async function assertSameChain(devnet: LockstepDevnet, height: number): Promise<void> {
  for (let n = 1; n <= height; n++) {
    const hashes = await Promise.all(devnet.nodes.map(async (node) => (await rpc<{ hash: Hex }>(node.httpUrl, 'eth_getBlockByNumber', [`0x${n.toString(16)}`, false])).hash));
    assert.equal(new Set(hashes).size, 1, `block ${n} on every node: ${hashes.join(' ')}`);
  }
}

function signTransfer(key: Hex, nonce: number): Promise<Hex> {
  return privateKeyToAccount(key).signTransaction({
    type: 'eip1559',
    chainId: anvil.id,
    nonce,
    to: DEAD,
    value: 1n,
    gas: 21_000n,
    maxFeePerGas: 10_000_000_000n,
    maxPriorityFeePerGas: 1_000_000_000n,
  });
}

describe('clients sending to the demo devnet', { timeout: 60_000 }, () => {
  const open: Array<{ close(): Promise<void> }> = [];
  after(async () => {
    for (const closable of open.reverse()) await closable.close();
  });

  test('what viem sends through evmux is mined by every node in the same block, and its receipt stays', async () => {
    const log = devnetLog();
    const { devnet, upstreams } = await startDemoDevnet(log.logger);
    open.push(devnet);
    const evmux: TestGateway = await startGateway(upstreams, {}, { logLevel: 'warn' });
    open.push(evmux);
    const client = createPublicClient({ chain: anvil, transport: http(evmux.httpUrl), pollingInterval: 100, cacheTime: 0 });
    // Two senders at once, each waiting for its receipts as a wallet does, through the demo's own 1 s blocks.
    const sent = await Promise.all(
      SENDERS.map(async (account) => {
        const wallet = createWalletClient({ account, chain: anvil, transport: http(evmux.httpUrl) });
        const receipts: TransactionReceipt[] = [];
        for (let k = 0; k < 3; k++) {
          const hash = await wallet.sendTransaction({ to: DEAD, value: 1n });
          receipts.push(await client.waitForTransactionReceipt({ hash, timeout: 10_000, pollingInterval: 100 }));
        }
        return receipts;
      }),
    );
    const receipts = sent.flat();
    const last = Math.max(...receipts.map((receipt) => Number(receipt.blockNumber)));
    // Blocks after the sends: a node that had mined one alone would be rolled back by now.
    await waitUntil('two blocks after the last send', () => devnet.blockNumber >= last + 2, 10_000);
    for (const receipt of receipts) {
      assert.equal(receipt.status, 'success');
      const onNodes = await assertMinedAlike(devnet, receipt.transactionHash);
      assert.equal(onNodes.blockHash, receipt.blockHash, `${receipt.transactionHash} is where the client was told`);
      const throughEvmux = await rpc<NodeReceipt | null>(evmux.httpUrl, 'eth_getTransactionReceipt', [receipt.transactionHash]);
      assert.equal(throughEvmux?.blockHash, receipt.blockHash, `${receipt.transactionHash} through evmux`);
    }
    await assertSameChain(devnet, last + 1);
    assert.deepEqual(log.troubles(), [], 'the devnet logged no divergence, failed block or failed pool');
  });

  test('a send a held node took is mined by every node once it is released', async () => {
    const log = devnetLog();
    const devnet = await LockstepDevnet.start({ nodes: 3, blockTimeMs: 0, gossip: true, logger: log.logger });
    open.push(devnet);
    const held = devnet.nodes[2];
    assert.ok(held !== undefined);
    devnet.hold(2);
    const hash = await rpc<Hex>(held.httpUrl, 'eth_sendRawTransaction', [await signTransfer(DEV_PRIVATE_KEYS[2], 0)]);
    await devnet.mine(2);
    // Catching up, the node mines its first block with the send in it: that block is not the record's.
    await devnet.release(2);
    await devnet.mine(1);
    const { blockNumber } = await assertMinedAlike(devnet, hash);
    assert.equal(Number(blockNumber), devnet.blockNumber, 'in the block after the release');
    await assertSameChain(devnet, devnet.blockNumber);
    assert.deepEqual(log.troubles(), []);
  });

  test("a send mined into a block a reorg replaces is in the new branch on every node", async () => {
    const log = devnetLog();
    const devnet = await LockstepDevnet.start({ nodes: 3, blockTimeMs: 0, gossip: true, logger: log.logger });
    open.push(devnet);
    const node0 = devnet.nodes[0];
    assert.ok(node0 !== undefined);
    const hash = await rpc<Hex>(node0.httpUrl, 'eth_sendRawTransaction', [await signTransfer(DEV_PRIVATE_KEYS[3], 0)]);
    await devnet.mine(1);
    const before = await assertMinedAlike(devnet, hash);
    await devnet.reorg(1);
    const afterReorg = await assertMinedAlike(devnet, hash);
    assert.notEqual(afterReorg.blockHash, before.blockHash, 'the new branch has it in a new block');
    await assertSameChain(devnet, devnet.blockNumber);
    assert.deepEqual(log.troubles(), []);
  });
});
