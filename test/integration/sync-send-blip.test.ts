/**
 * eth_sendRawTransactionSync on a node whose sockets are cut while it waits for the transaction to
 * be mined, mined meanwhile: the send is made again on that node once it is back (a blip), and the
 * client gets the receipt, not the node's "nonce too low" for its own transaction. One real anvil
 * node behind a relay that cuts it.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { keccak256 } from 'viem';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { CutRelay } from '../support/cut-relay.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { rpcAnswer } from '../support/node-rpc.js';
import { signedTx } from '../support/signed-tx.js';

let devnet: LockstepDevnet;
let relay: CutRelay;
let evmux: TestGateway;

before(async () => {
  devnet = await LockstepDevnet.start({ nodes: 1, blockTimeMs: 0, traffic: false });
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
