/**
 * A logs stream whose block's logs are over limits.maxAnswerBytes (lowered, as the README suggests
 * where memory is short, or a wide filter on a busy chain): no node can send them by eth_getLogs,
 * since the answer is skipped for its size. The stream must not ask again and again (it did, once
 * a second, for good), and the node must stay in rotation meanwhile (when such an answer closed its
 * only call socket, it was taken for down: every session on it moved away and back, and plain
 * calls failed while both nodes were out). The live logs still reach the subscriber; what
 * cannot be fetched is counted as a replay bound. Real anvil nodes in lockstep.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { devnetGatewayForFile } from '../support/devnet-gateway.js';
import { rpc } from '../support/node-rpc.js';
import { sleep, StreamClient, waitUntil } from '../support/stream-recorder.js';

const LOGS_PER_BLOCK = 200;
const BLOCKS = 3;

const fixture = devnetGatewayForFile(2, { config: { limits: { maxAnswerBytes: 64 * 1024 } }, traffic: false });

test("a block's logs over maxAnswerBytes: no loop, no node out of rotation, live logs delivered", async () => {
  const { devnet, evmux } = fixture;
  const watcher = await StreamClient.open(evmux.wsUrl, 'watcher');
  const indexer = await StreamClient.open(evmux.wsUrl, 'indexer');
  try {
    const heads = await watcher.subscribe(['newHeads']);
    const logs = await indexer.subscribe(['logs', {}]);
    await devnet.mine();
    await watcher.first(heads);
    const from = (await devnet.head(0)).number + 1n;
    for (let block = 0; block < BLOCKS; block++) {
      for (let i = 0; i < LOGS_PER_BLOCK; i++) devnet.queueEmit();
      await devnet.mine();
    }
    const expected = (await rpc(devnet.nodes[0]!.httpUrl, 'eth_getLogs', [{ fromBlock: `0x${from.toString(16)}`, toBlock: 'latest' }])) as unknown[];
    assert.equal(expected.length, BLOCKS * LOGS_PER_BLOCK);
    await waitUntil('every live log delivered', () => indexer.notifications(logs).length >= expected.length, 15_000);
    await sleep(3_000);
    const oversized = evmux.logs.filter((line) => String(line['msg']).includes('over limits.maxAnswerBytes')).length;
    assert.ok(oversized <= BLOCKS * 2, `${oversized} oversized answers: asked again and again`);
    const outOfRotation = evmux.logs.filter((line) => line['msg'] === 'upstream not usable' || line['msg'] === 'upstream down');
    assert.deepEqual(outOfRotation.map((line) => `${String(line['upstream'])}: ${String(line['msg'])}`), [], 'no node left rotation');
    assert.equal((await evmux.metric('evmux_failovers_total', { kind: 'newHeads' })) ?? 0, 0, 'no session moved');
    assert.equal(indexer.notifications(logs).length, expected.length, 'each live log once');
  } finally {
    watcher.close();
    indexer.close();
  }
});

test("a client's eth_getLogs over maxAnswerBytes is the client's error: its node stays in rotation", async () => {
  const { devnet, evmux } = fixture;
  const watcher = await StreamClient.open(evmux.wsUrl, 'watcher2');
  const reader = await StreamClient.open(evmux.wsUrl, 'reader');
  try {
    const heads = await watcher.subscribe(['newHeads']);
    await devnet.mine();
    await watcher.first(heads);
    const failoversBefore = (await evmux.metric('evmux_failovers_total', { kind: 'newHeads' })) ?? 0;
    const linesBefore = evmux.logs.length;
    const reply = await reader.request('eth_getLogs', [{ fromBlock: '0x0', toBlock: 'latest' }]);
    assert.equal((reply.error as { code?: number } | undefined)?.code, -32602, JSON.stringify(reply).slice(0, 300));
    await sleep(1_500);
    const outOfRotation = evmux.logs.slice(linesBefore).filter((line) => line['msg'] === 'upstream not usable' || line['msg'] === 'upstream down');
    assert.deepEqual(outOfRotation.map((line) => `${String(line['upstream'])}: ${String(line['msg'])}`), [], 'no node left rotation');
    assert.equal((await evmux.metric('evmux_failovers_total', { kind: 'newHeads' })) ?? 0, failoversBefore, 'no session moved');
  } finally {
    watcher.close();
    reader.close();
  }
});
