/**
 * evmux_requests_total and evmux_request_duration_seconds against what nodes were asked, on real
 * anvil nodes: the calls evmux's streams make are counted as clients' are, an answer over
 * limits.maxAnswerBytes is an outcome of its own, and the writes evmux routes have their names.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { devAccount, DEV_PRIVATE_KEYS } from '../../src/devnet/dev-accounts.js';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { mineWithEmits, waitFor } from '../support/client-fixture.js';
import { CountingRelay } from '../support/counting-relay.js';
import { startGateway } from '../support/gateway.js';
import { rpcAnswer } from '../support/node-rpc.js';
import { sumSamples } from '../support/prom-text.js';
import { pinnedUpstream, StreamClient } from '../support/stream-recorder.js';

test("a fallback carrying only subscriptions: every call evmux's streams made on it is in evmux_requests_total and the latency histogram", { timeout: 60_000 }, async (t) => {
  const devnet = await LockstepDevnet.start({ nodes: 2, blockTimeMs: 0, traffic: false });
  t.after(() => devnet.close());
  const relays = await Promise.all(devnet.nodes.map((node) => CountingRelay.start(node.wsUrl)));
  t.after(() => Promise.all(relays.map((relay) => relay.close())));
  const evmux = await startGateway([{ name: 'primary', url: relays[0]!.url }, { name: 'fallback', url: relays[1]!.url, role: 'fallback' }], {}, { logLevel: 'warn' });
  t.after(() => evmux.close());
  const pinned = async (): Promise<string | undefined> => pinnedUpstream((await evmux.get('/status')).body, 'logs');

  const client = await StreamClient.open(evmux.wsUrl, 'client');
  t.after(() => client.close());
  const heads = await client.subscribe(['newHeads']);
  await client.subscribe(['logs', { address: devnet.emitterAddress }]);
  await client.first(heads);
  await waitFor(async () => (await pinned()) === 'primary', 'the streams on the primary');

  // The primary dies; blocks with logs come meanwhile: the streams move to the fallback and fetch
  // the missed blocks' headers and logs there. No client calls a method at all.
  await devnet.kill(0);
  await mineWithEmits(devnet, 3, 2);
  const end = BigInt(devnet.blockNumber);
  await waitFor(async () => (await pinned()) === 'fallback' && client.tip(heads) >= end, 'the streams on the fallback, at the head', { timeoutMs: 15_000 });

  // What the fallback was asked besides its probes (eth_blockNumber), identity check (eth_chainId,
  // the genesis block) and subscribes.
  const fallback = relays[1]!;
  const asked = (): Record<string, number> => ({
    eth_getLogs: fallback.count('eth_getLogs'),
    eth_getBlockByHash: fallback.count('eth_getBlockByHash'),
    eth_getBlockByNumber: fallback.count('eth_getBlockByNumber', ([block]) => block !== '0x0'),
  });
  // The moved streams ask for the fallback's latest block at least; the logs of the missed blocks
  // only when the move came after them (else they came live there).
  assert.ok(asked()['eth_getBlockByNumber']! >= 1, `the streams asked the fallback for its head: ${JSON.stringify(asked())}`);
  const counted = async (): Promise<Record<string, number>> => {
    const text = (await evmux.get('/metrics')).body;
    return Object.fromEntries(Object.keys(asked()).map((method) => [method, sumSamples(text, 'evmux_requests_total', { method, upstream: 'fallback' })]));
  };
  await waitFor(async () => JSON.stringify(await counted()) === JSON.stringify(asked()), 'every call the fallback was asked counted', {
    state: async () => ({ asked: asked(), counted: await counted() }),
  });
  const text = (await evmux.get('/metrics')).body;
  for (const method of ['eth_getLogs', 'eth_getBlockByNumber']) {
    assert.equal(sumSamples(text, 'evmux_requests_total', { method, upstream: 'fallback', outcome: 'ok' }), asked()[method], method);
    assert.ok(sumSamples(text, 'evmux_request_duration_seconds_count', { method }) >= asked()[method]!, method);
  }
});

test('an answer over limits.maxAnswerBytes is counted as too_large, not as the node failing, and is not a latency', async (t) => {
  const devnet = await LockstepDevnet.start({ nodes: 1, blockTimeMs: 0, traffic: false });
  t.after(() => devnet.close());
  const evmux = await startGateway([devnet.nodes[0]!.wsUrl], { limits: { maxAnswerBytes: 65_536 } }, { logLevel: 'warn' });
  t.after(() => evmux.close());
  await mineWithEmits(devnet, 8, 30); // ~240 logs, well over 64 KiB of answer

  const answer = await rpcAnswer(evmux.httpUrl, 'eth_getLogs', [{ fromBlock: '0x0', toBlock: 'latest' }]);
  assert.equal(answer.error?.code, -32602, JSON.stringify(answer));
  const text = (await evmux.get('/metrics')).body;
  assert.equal(sumSamples(text, 'evmux_requests_total', { method: 'eth_getLogs', upstream: 'node0', outcome: 'too_large' }), 1);
  assert.equal(sumSamples(text, 'evmux_requests_total', { outcome: 'transport_error' }), 0);
  assert.equal(sumSamples(text, 'evmux_request_duration_seconds_count', { method: 'eth_getLogs' }), 0);
});

test('the writes evmux routes, and the reads it routes by block, are labelled with their method, not other', async (t) => {
  const devnet = await LockstepDevnet.start({ nodes: 1, blockTimeMs: 0, traffic: false });
  t.after(() => devnet.close());
  const evmux = await startGateway([devnet.nodes[0]!.wsUrl], {}, { logLevel: 'warn' });
  t.after(() => evmux.close());
  // Dev accounts anvil holds unlocked, which the devnet's own traffic leaves alone.
  const [from, to] = [DEV_PRIVATE_KEYS[3], DEV_PRIVATE_KEYS[1]].map((key) => devAccount(key).address);
  // Whatever the node answers (anvil does not know some of them): each is an attempt on it.
  const calls: Array<[string, unknown[]]> = [
    ['eth_sendTransaction', [{ from, to, value: '0x1' }]],
    ['eth_sendRawTransactionSync', ['0x00']],
    ['eth_sendRawTransactionConditional', ['0x00', {}]],
    ['eth_fillTransaction', [{ from, to, value: '0x1' }]],
    ['eth_getTransactionBySenderAndNonce', [from, '0x0']],
    ['eth_getUncleByBlockNumberAndIndex', ['0x0', '0x0']],
    ['eth_getUncleCountByBlockNumber', ['0x0']],
  ];
  for (const [method, params] of calls) await rpcAnswer(evmux.httpUrl, method, params);

  const text = (await evmux.get('/metrics')).body;
  const unlabelled = calls.map(([method]) => method).filter((method) => sumSamples(text, 'evmux_requests_total', { method }) === 0);
  assert.deepEqual(unlabelled, []);
  assert.equal(sumSamples(text, 'evmux_requests_total', { method: 'other' }), 0);
});
