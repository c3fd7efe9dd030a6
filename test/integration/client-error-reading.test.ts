/**
 * evmux's errors as real clients act on them. viem retries a -32005 three times as a rate limit, so
 * an answer over limits.maxAnswerBytes is -32602 and a node is asked for it once per call. ethers v6
 * falls back from eth_newFilter to polling eth_getLogs only on a -32601 in geth's words ("the method
 * … does not exist"), so on a gateway whose method lists leave filters out, its event listeners
 * still hear every log.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { JsonRpcProvider } from 'ethers';
import { createPublicClient, http, webSocket } from 'viem';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { logKey, mineWithEmits, waitFor, type LogKey } from '../support/client-fixture.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { scrapeSum } from '../support/prom-text.js';

let devnet: LockstepDevnet;

before(async () => {
  devnet = await LockstepDevnet.start({ nodes: 1, blockTimeMs: 0, traffic: false });
});

after(async () => {
  await devnet?.close();
});

async function gateway(settings: Parameters<typeof startGateway>[1]): Promise<TestGateway> {
  const evmux = await startGateway([devnet.nodes[0]!.wsUrl], settings);
  await waitFor(async () => JSON.parse((await evmux.get('/readyz')).body).usableUpstreams === 1, 'the node usable');
  return evmux;
}

/** eth_getLogs calls evmux has sent to nodes, whatever their outcome. */
async function getLogsSent(evmux: TestGateway): Promise<number> {
  return scrapeSum(evmux.httpUrl, 'evmux_requests_total', { method: 'eth_getLogs' });
}

test('viem, with its default retries, asks for an answer over limits.maxAnswerBytes once: it is -32602, which viem does not retry', async (t) => {
  await mineWithEmits(devnet, 8, 30); // ~240 logs, well over 64 KiB of answer
  const evmux = await gateway({ limits: { maxAnswerBytes: 65_536 } });
  t.after(() => evmux.close());
  const overWebSocket = createPublicClient({ transport: webSocket(evmux.wsUrl) });
  t.after(async () => (await overWebSocket.transport.getRpcClient()).close());
  for (const [kind, client] of [['http', createPublicClient({ transport: http(evmux.httpUrl) })], ['webSocket', overWebSocket]] as const) {
    const before = await getLogsSent(evmux);
    const error = await client.getLogs({ address: devnet.emitterAddress, fromBlock: 0n, toBlock: 'latest' }).then(
      () => assert.fail(`${kind}: the wide read was answered`),
      (caught: { code?: number; details?: string }) => caught,
    );
    assert.equal(error.code, -32602, kind);
    assert.match(error.details ?? '', /larger than this gateway's limit of 65536 bytes \(limits\.maxAnswerBytes\)/, kind);
    assert.equal((await getLogsSent(evmux)) - before, 1, `${kind}: the node asked once`);
  }
});

test('ethers v6 event listeners on a gateway that allows no filters, or denies them: ethers polls eth_getLogs and hears every log once', async (t) => {
  const methods = [
    { allow: ['eth_blockNumber', 'eth_chainId', 'eth_getLogs', 'eth_getBlockByNumber', 'net_version'] },
    { deny: ['eth_newFilter'] },
  ];
  for (const lists of methods) {
    const evmux = await gateway({ methods: lists });
    t.after(() => evmux.close());
    const provider = new JsonRpcProvider(evmux.httpUrl, undefined, { pollingInterval: 100, cacheTimeout: -1 });
    t.after(() => provider.destroy());
    const heard: LogKey[] = [];
    const from = BigInt(await provider.getBlockNumber()) + 1n;
    await provider.on({ address: devnet.emitterAddress }, (log: Parameters<typeof logKey>[0]) => heard.push(logKey(log)));
    await sleep(1_000); // ethers tries eth_newFilter, falls back, and its poller takes the head as its start
    for (let block = 0; block < 4; block++) {
      await mineWithEmits(devnet, 1, 2);
      await sleep(300); // a block per poll: ethers' poller reads the logs of the blocks it has seen
    }
    const to = BigInt(devnet.blockNumber);
    const logs = (await fetchLogs(from, to)).map(logKey);
    assert.equal(logs.length, 8);
    await waitFor(() => heard.length >= logs.length, `${JSON.stringify(lists)}: ethers heard the blocks' logs`, { state: () => ({ heard, logs }) });
    await sleep(300);
    assert.deepEqual(heard, logs, JSON.stringify(lists));
    await provider.off({ address: devnet.emitterAddress });
  }
});

async function fetchLogs(from: bigint, to: bigint): Promise<Array<Parameters<typeof logKey>[0]>> {
  const params = [{ address: devnet.emitterAddress, fromBlock: `0x${from.toString(16)}`, toBlock: `0x${to.toString(16)}` }];
  const response = await fetch(devnet.nodes[0]!.httpUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_getLogs', params }),
  });
  return ((await response.json()) as { result: Array<Parameters<typeof logKey>[0]> }).result;
}
