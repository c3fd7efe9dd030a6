/**
 * eth_sendRawTransactionSync that a node took but saw mined in no receipt within its own wait: the
 * client gets that node's answer, and no other node is sent the transaction. It was sent on (anvil's
 * -32603 "Transaction confirmation timeout" reads as node trouble), and the next node's "already
 * imported" told the client its own pending transaction had failed. Fake nodes: anvil waits 30 s.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEV_PRIVATE_KEYS } from '../../src/devnet/dev-accounts.js';
import { FakeNode, FakeRpcError } from '../support/fake-node.js';
import { startGateway } from '../support/gateway.js';
import { rpcAnswer } from '../support/node-rpc.js';
import { signedTx } from '../support/signed-tx.js';
import { waitUntil } from '../support/stream-recorder.js';

const WAIT_OVER = [
  { node: 'anvil', code: -32603, message: 'Transaction confirmation timeout' },
  { node: 'EIP-7966 (geth, reth)', code: 4, message: 'The transaction was added to the mempool but wasn\'t processed in 2s.' },
];

for (const { node: dialect, code, message } of WAIT_OVER) {
  test(`eth_sendRawTransactionSync whose node's wait ran out (${dialect}): that answer, and no other node sent it`, async (t) => {
    const nodes = await Promise.all([0, 1].map(() => FakeNode.start({ seed: 'sync-send-wait' })));
    t.after(() => Promise.all(nodes.map((node) => node.close())));
    let sends = 0;
    let firstNode = -1;
    nodes.forEach((node, index) => node.handle('eth_sendRawTransactionSync', () => {
      sends++;
      if (firstNode < 0) {
        firstNode = index;
        throw new FakeRpcError(code, message);
      }
      throw new FakeRpcError(-32003, 'transaction already imported');
    }));
    const evmux = await startGateway(nodes.map((node) => node.url));
    t.after(() => evmux.close());
    await waitUntil('both nodes usable', async () => (JSON.parse((await evmux.get('/readyz')).body) as { usableUpstreams: number }).usableUpstreams === 2, 10_000);
    const raw = await signedTx(DEV_PRIVATE_KEYS[1]!, { nonce: 0 });
    const answer = await rpcAnswer(evmux.httpUrl, 'eth_sendRawTransactionSync', [raw]);
    assert.deepEqual(answer.error, { code, message });
    assert.equal(sends, 1, 'sent to one node only');
  });
}
