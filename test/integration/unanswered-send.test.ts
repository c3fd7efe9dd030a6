/**
 * A signed transaction that no node answered: every node timed out, each perhaps with it in its
 * pool. evmux asks a node for it by hash before it tells the client anything; "failed" would send a
 * wallet to sign it again with a fresh nonce, and pay twice. And a send that finds no node usable
 * for a moment waits for one, as other calls do. Fake nodes, for answers that never come.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { keccak256 } from 'viem';
import { DEV_PRIVATE_KEYS } from '../../src/devnet/dev-accounts.js';
import { FakeNode } from '../support/fake-node.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { rpcAnswer } from '../support/node-rpc.js';
import { signedTx } from '../support/signed-tx.js';
import { sleep, waitUntil } from '../support/stream-recorder.js';

const TIMEOUT_MS = 300;

async function setup(t: TestContext, count: number): Promise<{ nodes: FakeNode[]; evmux: TestGateway; raw: `0x${string}` }> {
  const nodes = await Promise.all(Array.from({ length: count }, () => FakeNode.start({ seed: 'unanswered-send' })));
  t.after(() => Promise.all(nodes.map((node) => node.close())));
  const evmux = await startGateway(
    nodes.map((node) => node.url),
    { requestTimeoutMs: TIMEOUT_MS, health: { recoveryThreshold: 1 } },
  );
  t.after(() => evmux.close());
  await waitUntil('every node usable', async () => (JSON.parse((await evmux.get('/readyz')).body) as { usableUpstreams: number }).usableUpstreams === count, 10_000);
  const raw = await signedTx(DEV_PRIVATE_KEYS[1]!, { nonce: 0 });
  return { nodes, evmux, raw };
}

/** Every node takes the transaction and answers too late; `known` is whether they then have it. */
function takeSilently(nodes: FakeNode[], raw: string, known: boolean): void {
  for (const node of nodes) {
    node.handle('eth_sendRawTransaction', async () => {
      await sleep(3 * TIMEOUT_MS);
      return keccak256(raw as `0x${string}`);
    });
    node.handle('eth_getTransactionByHash', ([hash]) => (known && hash === keccak256(raw as `0x${string}`) ? { hash, nonce: '0x0', blockNumber: null } : null));
  }
}

test('no node answered a signed transaction, but a node has it: the client gets its hash', async (t) => {
  const { nodes, evmux, raw } = await setup(t, 2);
  takeSilently(nodes, raw, true);
  const answer = await rpcAnswer(evmux.httpUrl, 'eth_sendRawTransaction', [raw]);
  assert.deepEqual(answer.error, undefined);
  assert.equal(answer.result, keccak256(raw));
});

test('no node answered a signed transaction, and none says it has it: the error says it may have been taken and names its hash', async (t) => {
  const { nodes, evmux, raw } = await setup(t, 2);
  takeSilently(nodes, raw, false);
  const answer = await rpcAnswer(evmux.httpUrl, 'eth_sendRawTransaction', [raw]);
  const error = answer.error as { code: number; message: string };
  assert.equal(error.code, -32050);
  assert.match(error.message, new RegExp(`^eth_sendRawTransaction: no node answered \\(last error EVMUX_TIMEOUT: .*\\), and a node may have taken it: look for transaction ${keccak256(raw)} \\(eth_getTransactionByHash\\) before sending it again$`));
});

test('a signed transaction sent while no node is usable for a moment waits for one', async (t) => {
  const { nodes, evmux, raw } = await setup(t, 1);
  const node = nodes[0]!;
  node.handle('eth_sendRawTransaction', () => keccak256(raw));
  node.acceptConnections = false;
  node.dropConnections();
  await waitUntil('the node not usable', async () => (JSON.parse((await evmux.get('/readyz')).body) as { usableUpstreams: number }).usableUpstreams === 0, 5000);
  const answer = rpcAnswer(evmux.httpUrl, 'eth_sendRawTransaction', [raw]);
  await sleep(100);
  node.acceptConnections = true;
  assert.equal((await answer).result, keccak256(raw));
});

test("every node's sockets close under a signed transaction one of them took: it is asked once it is back, and the client gets the hash", async (t) => {
  // Asked at once, no node was usable (each had left the serving list as its sockets closed), and
  // the client was told, a few ms after the close, that the send failed; the node that had taken
  // it, back 50 ms later, was never asked. The node that took it here is the last one back.
  const { nodes, evmux, raw } = await setup(t, 2);
  const hash = keccak256(raw);
  let taker: FakeNode | undefined;
  for (const node of nodes) {
    node.handle('eth_sendRawTransaction', () => {
      taker ??= node;
      return new Promise(() => {});
    });
    node.handle('eth_getTransactionByHash', ([asked]) => (node === taker && asked === hash ? { hash, nonce: '0x0', blockNumber: null } : null));
  }
  const answer = rpcAnswer(evmux.httpUrl, 'eth_sendRawTransaction', [raw]);
  await waitUntil('a node took it', () => Promise.resolve(taker !== undefined), 5000, 2);
  await sleep(20);
  for (const node of nodes) node.acceptConnections = node !== taker;
  for (const node of nodes) node.dropConnections();
  await sleep(150);
  taker!.acceptConnections = true;
  const { result, error } = await answer;
  assert.deepEqual(error, undefined);
  assert.equal(result, hash);
});
