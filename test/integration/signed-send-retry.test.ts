/**
 * A signed transaction whose node took it and then went silent, while the other nodes mined it:
 * evmux's retry on another node meets "nonce too low" for the client's own transaction, and the
 * client must get its hash, not an error for a transaction that went through. Real anvil nodes.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { keccak256, parseGwei } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { DEV_PRIVATE_KEYS } from '../../src/devnet/dev-accounts.js';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { stopProcess } from '../support/process-stop.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { rpc, rpcAnswer } from '../support/node-rpc.js';
import { scrapeSum } from '../support/prom-text.js';

let devnet: LockstepDevnet;
let evmux: TestGateway;

before(async () => {
  devnet = await LockstepDevnet.start({ nodes: 3, blockTimeMs: 0, traffic: false });
  evmux = await startGateway(
    devnet.nodes.map((node) => node.wsUrl),
    { requestTimeoutMs: 1000, breaker: { failureThreshold: 1000 } },
  );
});

after(async () => {
  await evmux?.close();
  await devnet?.close();
});

test('a transaction mined while its first node hangs: the retry finds its nonce taken by it, and the client gets the hash', async () => {
  await devnet.mine(1);
  const sign = async (key: `0x${string}`): Promise<`0x${string}`> =>
    privateKeyToAccount(key).signTransaction({
      chainId: devnet.chainId,
      type: 'eip1559',
      nonce: Number(await rpc<string>(devnet.nodes[1]!.httpUrl, 'eth_getTransactionCount', [privateKeyToAccount(key).address, 'latest'])),
      gas: 21_000n,
      maxFeePerGas: parseGwei('10'),
      maxPriorityFeePerGas: parseGwei('1'),
      to: '0x000000000000000000000000000000000000dEaD',
      value: 1n,
    });
  // The client's first send makes the node that takes it its writer node: its next sends go there.
  const first = await sign(DEV_PRIVATE_KEYS[0]!);
  assert.equal((await rpcAnswer(evmux.httpUrl, 'eth_sendRawTransaction', [first])).result, keccak256(first));
  const taken = await Promise.all(devnet.nodes.map((node) => rpc<unknown>(node.httpUrl, 'eth_getTransactionByHash', [keccak256(first)])));
  const writer = taken.findIndex((found) => found !== null);
  assert.ok(writer >= 0, 'a node has the first send');
  // Three senders, so that the three transactions do not wait on each other's nonces.
  const raws = await Promise.all(DEV_PRIVATE_KEYS.slice(1, 4).map((key) => sign(key)));
  const silent = devnet.nodes[writer]!;
  const others = devnet.nodes.filter((node) => node !== silent);
  for (const i of [0, 1, 2]) devnet.hold(i);
  await stopProcess(silent.pid!);
  try {
    // One batch: all three go to the writer node, which has gone silent.
    const body = JSON.stringify(raws.map((raw, i) => ({ jsonrpc: '2.0', id: i, method: 'eth_sendRawTransaction', params: [raw] })));
    const answers = fetch(evmux.httpUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).then(
      async (response) => (await response.json()) as Array<{ id: number; result?: string; error?: unknown }>,
    );
    // Meanwhile the other nodes get all three (as a node passes on what it is sent) and mine them.
    // Their pools hold the three in orders of their own, so they mine outside the lockstep: the
    // test ends with them.
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (const node of others) {
      for (const raw of raws) await rpcAnswer(node.httpUrl, 'eth_sendRawTransaction', [raw]);
      await rpc(node.httpUrl, 'evm_mine', []);
    }
    const replies = (await answers).sort((a, b) => a.id - b.id);
    assert.deepEqual(
      replies.map((reply) => reply.result ?? reply.error),
      raws.map((raw) => keccak256(raw)),
    );
    // Each timed out there, or failed with its socket when the heartbeat closed it first (under
    // load the two come within moments of each other).
    const tried = await scrapeSum(evmux.httpUrl, 'evmux_requests_total', { method: 'eth_sendRawTransaction', upstream: `node${writer}` });
    assert.equal(tried, 4, 'the first send and all three of the batch were sent to the writer node');
    for (const raw of raws) {
      const receipt = await rpcAnswer(others[0]!.httpUrl, 'eth_getTransactionReceipt', [keccak256(raw)]);
      assert.equal((receipt.result as { status?: string } | null)?.status, '0x1', 'mined');
    }
  } finally {
    process.kill(silent.pid!, 'SIGCONT');
  }
});
