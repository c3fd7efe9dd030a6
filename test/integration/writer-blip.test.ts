/**
 * The writer node's sockets closing for a moment (a network blip, a load balancer restarting): the
 * client's next calls that follow its writer node (the pending nonce, its next send) wait for that
 * node, back in milliseconds, instead of going to a node without its last transaction. Before, a
 * viem wallet's next send took the nonce of the one before it, and both were "sent": only one can
 * be mined. Real anvil nodes, which do not pass transactions on, behind relays that cut them.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createPublicClient, createWalletClient, http, keccak256 } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { anvil } from 'viem/chains';
import { DEV_PRIVATE_KEYS } from '../../src/devnet/dev-accounts.js';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { CutRelay } from '../support/cut-relay.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { rpc, rpcAnswer } from '../support/node-rpc.js';
import { signedTx } from '../support/signed-tx.js';
import { waitUntil } from '../support/stream-recorder.js';

let devnet: LockstepDevnet;
let relays: CutRelay[];
let evmux: TestGateway;

before(async () => {
  devnet = await LockstepDevnet.start({ nodes: 3, blockTimeMs: 0, traffic: false });
  relays = await Promise.all(devnet.nodes.map((node) => CutRelay.start(Number(new URL(node.wsUrl).port))));
  evmux = await startGateway(relays.map((relay) => `ws://127.0.0.1:${relay.port}`), {}, { logLevel: 'warn' });
  await waitUntil('every node usable', async () => (JSON.parse((await evmux.get('/readyz')).body) as { usableUpstreams: number }).usableUpstreams === 3, 10_000);
});

after(async () => {
  await evmux?.close();
  await Promise.all((relays ?? []).map((relay) => relay.close()));
  await devnet?.close();
});

/** The nodes whose pool holds the transaction. */
async function holders(hash: string): Promise<number[]> {
  const held = await Promise.all(devnet.nodes.map((node) => rpc<unknown>(node.httpUrl, 'eth_getTransactionByHash', [hash])));
  return held.flatMap((tx, i) => (tx === null ? [] : [i]));
}

test("the writer node cut for a moment: the wallet's next send takes the next nonce, on the same node", async () => {
  const account = privateKeyToAccount(devnet.testAccountKey);
  const wallet = createWalletClient({ account, chain: anvil, transport: http(evmux.httpUrl) });
  const client = createPublicClient({ chain: anvil, cacheTime: 0, transport: http(evmux.httpUrl) });
  const first = await wallet.sendTransaction({ to: '0x000000000000000000000000000000000000dEaD', value: 1n });
  const [writer] = await holders(first);
  assert.notEqual(writer, undefined);
  for (const [round, refuseMs] of [[1, 0], [2, 150], [3, 400]] as const) {
    // A socket that closed within 2 s of opening counts as a failed connect, and the reconnect
    // backoff grows: cut again sooner, the node would be away longer than the wait, as a flapping node is.
    if (round > 1) await new Promise((resolve) => setTimeout(resolve, 2_100));
    relays[writer!]!.cut(refuseMs);
    const hash = await wallet.sendTransaction({ to: '0x000000000000000000000000000000000000dEaD', value: BigInt(round + 1) });
    const tx = await client.getTransaction({ hash });
    assert.equal(tx.nonce, round, `round ${round} (cut, refused ${refuseMs} ms): the send takes the next nonce`);
    assert.deepEqual(await holders(hash), [writer], `round ${round}: on the writer node, beside the ones before it`);
    assert.equal(await client.getTransactionCount({ address: account.address, blockTag: 'pending' }), round + 1);
  }
});

test('the writer node cut while a send is on it, unanswered: the send is made again there, not moved', async () => {
  const account = privateKeyToAccount(devnet.testAccountKey);
  const wallet = createWalletClient({ account, chain: anvil, transport: http(evmux.httpUrl) });
  const client = createPublicClient({ chain: anvil, cacheTime: 0, transport: http(evmux.httpUrl) });
  const nonce = await client.getTransactionCount({ address: account.address, blockTag: 'pending' });
  const [writer] = await holders(await wallet.sendTransaction({ to: '0x000000000000000000000000000000000000dEaD', value: 1n }));
  // The node takes the next send, and its answer never comes back: the socket is cut under it.
  const raw = await signedTx(devnet.testAccountKey, { chainId: devnet.chainId, nonce: nonce + 1, value: 2n });
  relays[writer!]!.mute();
  const sent = rpcAnswer(evmux.httpUrl, 'eth_sendRawTransaction', [raw]);
  await new Promise((resolve) => setTimeout(resolve, 150));
  relays[writer!]!.cut(200);
  const hash = keccak256(raw);
  assert.deepEqual(await sent, { result: hash });
  assert.deepEqual(await holders(hash), [writer], 'made again on the writer node (which had it), and on no other');
  const next = await wallet.sendTransaction({ to: '0x000000000000000000000000000000000000dEaD', value: 3n });
  const tx = await client.getTransaction({ hash: next });
  assert.equal(tx.nonce, nonce + 2, 'the next send takes the next nonce');
  assert.deepEqual(await holders(next), [writer]);
});

test('the writer node away longer than the wait: sends made together all go to one other node', async () => {
  const [writer] = await holders(await rpc<string>(evmux.httpUrl, 'eth_sendRawTransaction', [await signedTx(devnet.testAccountKey, { chainId: devnet.chainId, nonce: Number(await rpc<string>(evmux.httpUrl, 'eth_getTransactionCount', [privateKeyToAccount(devnet.testAccountKey).address, 'pending'])) })]));
  relays[writer!]!.cut(3_000);
  await new Promise((resolve) => setTimeout(resolve, 1_200));
  // A burst from another account of the same client (one session key): its writer node is the one away.
  const raws = await Promise.all([0, 1, 2, 3].map((nonce) => signedTx(DEV_PRIVATE_KEYS[1]!, { chainId: devnet.chainId, nonce })));
  const answers = await Promise.all(raws.map((raw) => rpcAnswer(evmux.httpUrl, 'eth_sendRawTransaction', [raw])));
  assert.deepEqual(answers, raws.map((raw) => ({ result: keccak256(raw) })));
  const held = await Promise.all(raws.map((raw) => holders(keccak256(raw))));
  assert.equal(new Set(held.map((nodes) => nodes.join())).size, 1, `all four on one node: ${JSON.stringify(held)}`);
  assert.notDeepEqual(held[0], [writer]);
  assert.equal(Number(await rpc<string>(evmux.httpUrl, 'eth_getTransactionCount', [privateKeyToAccount(DEV_PRIVATE_KEYS[1]!).address, 'pending'])), 4);
});
