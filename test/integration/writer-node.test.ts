/**
 * The writer node (recent-writers.ts) at its edges: a client's first sends made together, before
 * any is answered, and a writer node that falls behind the others. Real anvil nodes of one chain,
 * which do not pass transactions to each other: a transaction is only in the pool of the node it
 * was sent to. (read-your-writes.test.ts has the common case, through viem.)
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { keccak256 } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { DEV_PRIVATE_KEYS } from '../../src/devnet/dev-accounts.js';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { stopProcess } from '../support/process-stop.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { rpc, rpcAnswer } from '../support/node-rpc.js';
import { signedTx } from '../support/signed-tx.js';
import { waitUntil } from '../support/stream-recorder.js';

async function setup(t: TestContext, overrides: Record<string, unknown> = {}): Promise<{ devnet: LockstepDevnet; evmux: TestGateway }> {
  const devnet = await LockstepDevnet.start({ nodes: 3, blockTimeMs: 0, traffic: false });
  t.after(() => devnet.close());
  await devnet.mine(2);
  const evmux = await startGateway(
    devnet.nodes.map((node) => node.wsUrl),
    overrides,
  );
  t.after(() => evmux.close());
  await waitUntil('every node usable', async () => (JSON.parse((await evmux.get('/readyz')).body) as { usableUpstreams: number }).usableUpstreams === 3, 10_000);
  return { devnet, evmux };
}

function transfer(devnet: LockstepDevnet, nonce: number): Promise<`0x${string}`> {
  return signedTx(devnet.testAccountKey, { chainId: devnet.chainId, nonce });
}

/**
 * The gate's code: with calldata, store its first word in slot 0; without, revert while slot 0 is
 * zero. (CALLDATASIZE ISZERO PUSH1 0x0c JUMPI; PUSH1 0 CALLDATALOAD PUSH1 0 SSTORE STOP;
 * 0x0c: JUMPDEST PUSH1 0 SLOAD PUSH1 0x17 JUMPI PUSH1 0 DUP1 REVERT; 0x17: JUMPDEST STOP)
 */
const GATE_RUNTIME = '3615600c576000356000550' + '05b600054601757600080fd5b00';

/** Deploy `runtime` (hex, no 0x) from a dev account of its own, mined on every node. */
async function deploy(devnet: LockstepDevnet, runtime: string): Promise<`0x${string}`> {
  const length = (runtime.length / 2).toString(16).padStart(2, '0');
  // PUSH1 len PUSH1 12 PUSH1 0 CODECOPY PUSH1 len PUSH1 0 RETURN, then the runtime.
  const init = `0x60${length}600c600039` + `60${length}6000f3${runtime}`;
  const raw = await signedTx(DEV_PRIVATE_KEYS[3], { chainId: devnet.chainId, nonce: 0, gas: 200_000n, to: undefined, value: 0n, data: init as `0x${string}` });
  devnet.queueRawTransaction(raw);
  await devnet.mine(1);
  const receipt = await rpc<{ contractAddress: `0x${string}`; status: string }>(devnet.nodes[0]!.httpUrl, 'eth_getTransactionReceipt', [keccak256(raw)]);
  assert.equal(receipt.status, '0x1', 'the gate is deployed');
  return receipt.contractAddress;
}

/** Signed transactions sent through evmux in one HTTP batch; each must be answered with its hash. */
async function sendInOneBatch(evmux: TestGateway, raws: `0x${string}`[]): Promise<void> {
  const body = JSON.stringify(raws.map((raw, id) => ({ jsonrpc: '2.0', id, method: 'eth_sendRawTransaction', params: [raw] })));
  const replies = (await (await fetch(evmux.httpUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).json()) as Array<{ result?: string }>;
  assert.deepEqual(
    replies.map((reply) => reply.result),
    raws.map((raw) => keccak256(raw)),
  );
}

/** The answers of `count` calls through evmux, tallied. */
async function tally(evmux: TestGateway, method: string, params: unknown[], count: number, show: (result: unknown) => string): Promise<Record<string, number>> {
  const seen: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    const answer = await rpcAnswer(evmux.httpUrl, method, params);
    const key = answer.error === undefined ? show(answer.result) : `error ${JSON.stringify(answer.error)}`;
    seen[key] = (seen[key] ?? 0) + 1;
  }
  return seen;
}

test("a client's sends made together, before any is answered, go to one node: its pending nonce counts them all", async (t) => {
  const { devnet, evmux } = await setup(t);
  const raws = await Promise.all([0, 1, 2].map((nonce) => transfer(devnet, nonce)));
  await sendInOneBatch(evmux, raws);
  const held = await Promise.all(
    devnet.nodes.map(async (node) => (await Promise.all(raws.map((raw) => rpc<unknown>(node.httpUrl, 'eth_getTransactionByHash', [keccak256(raw)])))).filter((tx) => tx !== null).length),
  );
  assert.deepEqual([...held].sort(), [0, 0, 3], `transactions held per node: ${held.join(', ')}`);
  const address = privateKeyToAccount(devnet.testAccountKey).address;
  assert.deepEqual(await tally(evmux, 'eth_getTransactionCount', [address, 'pending'], 6, (result) => String(Number(result))), { 3: 6 });
});

test('a gas estimate with no block named follows the writer node: nodes estimate against their pending state', async (t) => {
  const { devnet, evmux } = await setup(t);
  // A gate: a call with no calldata reverts until a call with calldata has stored a non-zero word.
  // As an allowance before a swap: the estimate for the second step needs the first, still pending.
  const gate = await deploy(devnet, GATE_RUNTIME);
  const open = await signedTx(devnet.testAccountKey, { chainId: devnet.chainId, nonce: 0, gas: 100_000n, to: gate, value: 0n, data: `0x${'00'.repeat(31)}01` });
  await sendInOneBatch(evmux, [open]);
  const use = { from: privateKeyToAccount(devnet.testAccountKey).address, to: gate, data: '0x' };
  const outcome = (result: unknown): string => (typeof result === 'string' ? 'estimated' : String(result));
  // As ethers and most dapps ask: no block. anvil (as geth and Erigon) estimates against "pending".
  assert.deepEqual(await tally(evmux, 'eth_estimateGas', [use], 6, outcome), { estimated: 6 });
  assert.deepEqual(await tally(evmux, 'eth_estimateGas', [use, 'pending'], 3, outcome), { estimated: 3 });
});

test('the writer node behind the others: reads of what is mined come from a node at the highest head', async (t) => {
  const { devnet, evmux } = await setup(t);
  const raw = await transfer(devnet, 0);
  const hash = (await rpcAnswer(evmux.httpUrl, 'eth_sendRawTransaction', [raw])).result;
  assert.equal(hash, keccak256(raw));
  const taken = await Promise.all(devnet.nodes.map((node) => rpc<unknown>(node.httpUrl, 'eth_getTransactionByHash', [hash])));
  const writer = taken.findIndex((tx) => tx !== null);
  // The others mine it; the writer node stays two blocks behind (within health.maxLagBlocks: it serves).
  devnet.hold(writer);
  devnet.queueRawTransaction(raw);
  await devnet.mine(2);
  const top = BigInt(devnet.blockNumber);
  await waitUntil('evmux knows the new head', async () => {
    const status = JSON.parse((await evmux.get('/status')).body) as { upstreams: Array<{ name: string; head: string | null; usable: boolean }> };
    const writerNode = status.upstreams.find((upstream) => upstream.name === `node${writer}`);
    return writerNode?.usable === true && status.upstreams.filter((upstream) => upstream.head !== null && BigInt(upstream.head) === top).length === 2;
  }, 5000);
  const address = privateKeyToAccount(devnet.testAccountKey).address;
  const mined = (result: unknown): string => (result === null ? 'null' : (result as { blockNumber: string | null }).blockNumber === null ? 'pending' : 'mined');
  assert.deepEqual(await tally(evmux, 'eth_getTransactionByHash', [hash], 6, mined), { mined: 6 });
  assert.deepEqual(await tally(evmux, 'eth_getTransactionReceipt', [hash], 6, mined), { mined: 6 });
  assert.deepEqual(await tally(evmux, 'eth_getTransactionCount', [address, 'latest'], 6, (result) => String(Number(result))), { 1: 6 });
  // The pending nonce is the pool's: the writer node has it right too.
  assert.deepEqual(await tally(evmux, 'eth_getTransactionCount', [address, 'pending'], 6, (result) => String(Number(result))), { 1: 6 });
  await devnet.release(writer);
});

test('the writer node stops answering while sends made together are in flight: they all move to one node', async (t) => {
  // Timeouts long enough that the nodes left answer within them on a loaded machine: a send that
  // timed out on one of them too would rightly move on again.
  const { devnet, evmux } = await setup(t, { requestTimeoutMs: 2000, retry: { deadlineMs: 10_000 }, breaker: { failureThreshold: 1000 } });
  const first = await transfer(devnet, 0);
  assert.equal((await rpcAnswer(evmux.httpUrl, 'eth_sendRawTransaction', [first])).result, keccak256(first));
  const taken = await Promise.all(devnet.nodes.map((node) => rpc<unknown>(node.httpUrl, 'eth_getTransactionByHash', [keccak256(first)])));
  const writer = devnet.nodes[taken.findIndex((tx) => tx !== null)]!;
  const raws = await Promise.all([1, 2, 3, 4].map((nonce) => transfer(devnet, nonce)));
  await stopProcess(writer.pid!);
  try {
    await sendInOneBatch(evmux, raws);
    // Where each send was taken, by evmux's count of answered sends per node.
    const held = await Promise.all(
      devnet.nodes.filter((node) => node !== writer).map((node) => evmux.metric('evmux_requests_total', { method: 'eth_sendRawTransaction', upstream: `node${node.index}`, outcome: 'ok' })),
    );
    const sends = (await evmux.get('/metrics')).body.split('\n').filter((line) => line.startsWith('evmux_requests_total{method="eth_sendRawTransaction"'));
    assert.deepEqual(held.map((count) => count ?? 0).sort(), [0, 4], `the four sends taken per node left (writer node${writer.index}):\n${sends.join('\n')}`);
  } finally {
    process.kill(writer.pid!, 'SIGCONT');
  }
});
