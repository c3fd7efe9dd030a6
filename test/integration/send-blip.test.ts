/**
 * Signed sends on a node whose sockets are cut under them (a blip): the send is made again on that
 * node once it is back, and the client gets what the node's "already known" or "nonce too low"
 * means for its own transaction: the receipt (eth_sendRawTransactionSync, mined meanwhile), or the
 * transaction's hash (a blob transaction's is not that of the bytes sent). One real anvil node
 * behind a relay that cuts it.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { commitmentToVersionedHash, keccak256, parseGwei, type Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { DEV_PRIVATE_KEYS } from '../../src/devnet/dev-accounts.js';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { CutRelay } from '../support/cut-relay.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { rpcAnswer } from '../support/node-rpc.js';
import { signedTx } from '../support/signed-tx.js';

let devnet: LockstepDevnet;
let relay: CutRelay;
let evmux: TestGateway;

const INFINITY: Hex = `0xc0${'00'.repeat(47)}`;

/** A blob transaction of `key`'s account at `nonce`, signed with its blob (what is sent) and without (its hash). */
async function blobTransaction(key: Hex, nonce: number): Promise<{ raw: Hex; canonical: Hex }> {
  const tx = {
    type: 'eip4844' as const,
    chainId: devnet.chainId,
    nonce,
    gas: 21_000n,
    maxFeePerGas: parseGwei('20'),
    maxPriorityFeePerGas: parseGwei('1'),
    maxFeePerBlobGas: parseGwei('3'),
    to: '0x000000000000000000000000000000000000dEaD' as const,
    blobVersionedHashes: [commitmentToVersionedHash({ commitment: INFINITY })],
  };
  const account = privateKeyToAccount(key);
  const raw = await account.signTransaction({ ...tx, sidecars: [{ blob: `0x${'00'.repeat(131_072)}` as Hex, commitment: INFINITY, proof: INFINITY }] });
  return { raw, canonical: await account.signTransaction(tx) };
}

before(async () => {
  devnet = await LockstepDevnet.start({ nodes: 1, blockTimeMs: 0, traffic: false });
  // anvil loads its KZG setup at its first blob transaction, and answers nothing for ~3 s meanwhile
  // (more on a busy machine): taken here, not under the test's cut.
  const warm = await blobTransaction(DEV_PRIVATE_KEYS[1], 0);
  assert.deepEqual(await rpcAnswer(devnet.nodes[0]!.httpUrl, 'eth_sendRawTransaction', [warm.raw]), { result: keccak256(warm.canonical) });
  relay = await CutRelay.start(Number(new URL(devnet.nodes[0]!.wsUrl).port));
  evmux = await startGateway([`ws://127.0.0.1:${relay.port}`], {}, { logLevel: 'warn' });
});

after(async () => {
  await evmux?.close();
  await relay?.close();
  await devnet?.close();
});

test('eth_sendRawTransactionSync cut after its transaction was mined: the client gets the receipt, not "nonce too low"', async () => {
  const raw = await signedTx(devnet.testAccountKey, { chainId: devnet.chainId, nonce: 0, value: 4n });
  // The node takes it and waits for it to be mined; its answer never comes back.
  relay.mute();
  const sent = rpcAnswer(evmux.httpUrl, 'eth_sendRawTransactionSync', [raw]);
  await new Promise((resolve) => setTimeout(resolve, 150));
  devnet.queueRawTransaction(raw);
  await devnet.mine(1);
  relay.cut(200);
  const answer = await sent;
  const receipt = answer.result as { transactionHash?: string; status?: string } | undefined;
  assert.equal(receipt?.transactionHash, keccak256(raw), JSON.stringify(answer));
  assert.equal(receipt.status, '0x1');
});

test('a blob transaction cut under its send: the client gets its hash, not that of the blobs sent with it', async () => {
  const { raw, canonical } = await blobTransaction(DEV_PRIVATE_KEYS[3], 0);
  relay.mute();
  const sent = rpcAnswer(evmux.httpUrl, 'eth_sendRawTransaction', [raw]);
  await new Promise((resolve) => setTimeout(resolve, 150));
  relay.cut(200);
  assert.deepEqual(await sent, { result: keccak256(canonical) });
});
