/**
 * A wallet that sends a transaction and then asks for its pending nonce, the transaction, and sends
 * the next one, through evmux in front of nodes that do not pass transactions on to each other
 * (anvil nodes are not peered): every answer must come from the node that took its send. Through a
 * plain balancer, half of them came from nodes that had not seen it, and the next send reused a nonce.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createPublicClient, createWalletClient, http, webSocket, type Transport } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { anvil } from 'viem/chains';
import { DEV_PRIVATE_KEYS } from '../../src/devnet/dev-accounts.js';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { rpc } from '../support/node-rpc.js';

let devnet: LockstepDevnet;
let evmux: TestGateway;

before(async () => {
  devnet = await LockstepDevnet.start({ nodes: 3, blockTimeMs: 0, traffic: false });
  await devnet.mine(1);
  evmux = await startGateway(devnet.nodes.map((node) => node.wsUrl));
});

after(async () => {
  await evmux?.close();
  await devnet?.close();
});

const TO = '0x000000000000000000000000000000000000dEaD';
const TRIES = 12;

for (const [kind, key] of [['HTTP', DEV_PRIVATE_KEYS[2]], ['WebSocket', DEV_PRIVATE_KEYS[3]]] as const) {
  test(`${kind}: after a send, the pending nonce, the transaction and the next sends come from the node that took it`, async (t) => {
    const transport: Transport = kind === 'HTTP' ? http(evmux.httpUrl) : webSocket(evmux.wsUrl);
    const account = privateKeyToAccount(key);
    const wallet = createWalletClient({ account, chain: anvil, transport });
    const client = createPublicClient({ chain: anvil, transport, cacheTime: 0 });
    if (kind === 'WebSocket') t.after(async () => (await (client.transport as unknown as { getRpcClient(): Promise<{ close(): void }> }).getRpcClient()).close());
    const start = await client.getTransactionCount({ address: account.address, blockTag: 'pending' });

    const first = await wallet.sendTransaction({ to: TO, value: 1n });
    const holders = await nodesHolding(first);
    assert.equal(holders.length, 1, `one node has the transaction (the devnet's nodes pass nothing on): ${holders.join(', ')}`);

    const nonces = await Promise.all(Array.from({ length: TRIES }, () => client.getTransactionCount({ address: account.address, blockTag: 'pending' })));
    assert.deepEqual(nonces, Array(TRIES).fill(start + 1), 'the pending nonce counts the transaction');
    const found = await Promise.all(Array.from({ length: TRIES }, () => client.getTransaction({ hash: first }).then((tx) => tx.nonce)));
    assert.deepEqual(found, Array(TRIES).fill(start));

    for (const value of [2n, 3n]) await wallet.sendTransaction({ to: TO, value });
    const pool = await rpc<{ pending: Record<string, Record<string, unknown>> }>(devnet.nodes[holders[0]!]!.httpUrl, 'txpool_content', []);
    const mine = Object.entries(pool.pending).find(([address]) => address.toLowerCase() === account.address.toLowerCase())?.[1] ?? {};
    assert.deepEqual(Object.keys(mine).map(Number).sort((a, b) => a - b), [start, start + 1, start + 2], 'the next sends went to the same node, each with its own nonce');
  });
}

test("reads of the pending block follow the node that took the send whatever the tag's case ('Pending', as anvil reads it)", async () => {
  // The devnet's transfer recipient: this devnet runs no traffic, so nothing else moves its balance.
  const account = privateKeyToAccount(DEV_PRIVATE_KEYS[1]);
  const wallet = createWalletClient({ account, chain: anvil, transport: http(evmux.httpUrl) });
  const mined = await rpc<string>(evmux.httpUrl, 'eth_getBalance', [account.address, 'latest']);
  const sent = await wallet.sendTransaction({ to: TO, value: 10n ** 18n });
  assert.equal((await nodesHolding(sent)).length, 1, 'one node has the transaction');
  const tags = Array.from({ length: TRIES }, (_, i) => (i % 2 === 0 ? 'Pending' : 'PENDING'));
  const balances = await Promise.all(tags.map((tag) => rpc<string>(evmux.httpUrl, 'eth_getBalance', [account.address, tag])));
  assert.deepEqual(
    tags.filter((_, i) => balances[i] === mined),
    [],
    'every pending balance counts the send',
  );
});

/** The devnet nodes (by index) whose pools or chains hold the transaction. */
async function nodesHolding(hash: string): Promise<number[]> {
  const found = await Promise.all(devnet.nodes.map((node) => rpc<unknown>(node.httpUrl, 'eth_getTransactionByHash', [hash])));
  return found.flatMap((tx, i) => (tx === null ? [] : [i]));
}
