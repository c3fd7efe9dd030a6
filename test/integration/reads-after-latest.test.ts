/**
 * An HTTP indexer's reads of a block it was just handed: it polls eth_getBlockByNumber('latest')
 * (viem's watchBlocks does) and then reads that block by number, or it reads a block and a
 * transaction by the hashes in a log it was handed (ethers' log.getBlock() and
 * getTransactionReceipt()), or by those of a log a logs filter handed it (viem's and ethers' HTTP
 * event watchers), or by the hash a block filter handed it (an HTTP block watcher). Real anvil
 * nodes of one chain, one held a block behind (usable: within health.maxLagBlocks).
 * block-after-head.test.ts has the client that learns the head from a subscription or
 * eth_blockNumber.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { decodeFilterId } from '../../src/router/filter-id.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { rpc, rpcAnswer } from '../support/node-rpc.js';
import { scrapeSum } from '../support/prom-text.js';
import { waitUntil } from '../support/stream-recorder.js';

const hex = (n: number): string => `0x${n.toString(16)}`;

interface Block {
  number: string;
  hash: string;
}

async function setup(t: TestContext, probeIntervalMs: number): Promise<{ devnet: LockstepDevnet; evmux: TestGateway }> {
  const devnet = await LockstepDevnet.start({ nodes: 2, blockTimeMs: 0 });
  t.after(() => devnet.close());
  await devnet.mine(2);
  const evmux = await startGateway(
    devnet.nodes.map((node) => node.wsUrl),
    { health: { probeIntervalMs } },
  );
  t.after(() => evmux.close());
  const heads = async (): Promise<string[]> => (JSON.parse((await evmux.get('/status')).body) as { upstreams: Array<{ usable: boolean; head: string }> }).upstreams.map((u) => (u.usable ? u.head : 'unusable'));
  await waitUntil('both nodes usable at the head', async () => (await heads()).every((head) => head === String(devnet.blockNumber)), 10_000);
  return { devnet, evmux };
}

/** A block with a log mined on node0 alone (node1 held): its number, and its logs as node0 has them. */
async function blockOnNode0Only(devnet: LockstepDevnet): Promise<{ n: number; logsOfN: unknown[] }> {
  devnet.hold(1);
  devnet.queueEmit();
  await devnet.mine(1);
  const n = devnet.blockNumber;
  const logsOfN = await rpc<unknown[]>(devnet.nodes[0]!.httpUrl, 'eth_getLogs', [{ fromBlock: hex(n), toBlock: hex(n) }]);
  assert.ok(logsOfN.length > 0, 'block N has a log');
  return { n, logsOfN };
}

/** How many of an eth_getLogs answer's logs are of block `n`; -1 for an error. */
function logsOfBlock(answer: { result?: unknown }, n: number): number {
  return Array.isArray(answer.result) ? answer.result.filter((log) => (log as { blockNumber: string }).blockNumber === hex(n)).length : -1;
}

test("a block handed out as 'latest' is then read from a node that has it, and 'latest' does not go back", async (t) => {
  // No probe between the block and the reads: what evmux knows of node0's new head, it learns
  // from the answers.
  const { devnet, evmux } = await setup(t, 60_000);
  const { n, logsOfN } = await blockOnNode0Only(devnet);

  // Polled until node0 answers (the two nodes take turns).
  let latest = 0;
  for (let poll = 0; poll < 20 && latest < n; poll++) latest = Number((await rpc<Block>(evmux.httpUrl, 'eth_getBlockByNumber', ['latest', false])).number);
  assert.equal(latest, n, "node0 never answered 'latest'");

  const seen: string[] = [];
  for (let i = 0; i < 8; i++) {
    const block = await rpcAnswer(evmux.httpUrl, 'eth_getBlockByNumber', [hex(n), false]);
    if ((block.result as Block | null)?.number !== hex(n)) seen.push(`block N: ${JSON.stringify(block)}`);
    const logs = await rpcAnswer(evmux.httpUrl, 'eth_getLogs', [{ fromBlock: hex(n - 1), toBlock: hex(n) }]);
    const ofN = logsOfBlock(logs, n);
    if (ofN !== logsOfN.length) seen.push(`logs of N: ${ofN} (${JSON.stringify(logs).slice(0, 120)})`);
    const again = await rpc<Block>(evmux.httpUrl, 'eth_getBlockByNumber', ['latest', false]);
    if (Number(again.number) < n) seen.push(`latest went back to ${Number(again.number)}`);
    const number = await rpc<string>(evmux.httpUrl, 'eth_blockNumber', []);
    if (Number(number) < n) seen.push(`eth_blockNumber ${Number(number)}`);
  }
  assert.deepEqual(seen, []);
});

test('reads of a block whose only node went away wait for a node that has it, rather than take one that lacks it', async (t) => {
  const { devnet, evmux } = await setup(t, 200);
  const { n, logsOfN } = await blockOnNode0Only(devnet);
  assert.equal(Number(await rpc<string>(evmux.httpUrl, 'eth_blockNumber', [])), n);
  await devnet.kill(0);
  await waitUntil('node0 seen gone', async () => !(JSON.parse((await evmux.get('/status')).body) as { upstreams: Array<{ usable: boolean }> }).upstreams[0]!.usable, 10_000);

  // Nobody has block N now: a read of it fails, naming it, rather than getting node1's answer.
  const alone = await rpcAnswer(evmux.httpUrl, 'eth_getLogs', [{ fromBlock: hex(n - 1), toBlock: hex(n) }]);
  assert.equal(alone.error?.code, -32050, JSON.stringify(alone));
  assert.match(alone.error!.message, new RegExp(`no usable node has block ${n} yet`));

  // node1 gets it while the read waits: the read is answered in full.
  const read = rpcAnswer(evmux.httpUrl, 'eth_getLogs', [{ fromBlock: hex(n - 1), toBlock: hex(n) }]);
  setTimeout(() => void devnet.release(1), 300);
  const logs = await read;
  const ofN = logsOfBlock(logs, n);
  assert.equal(ofN, logsOfN.length, JSON.stringify(logs).slice(0, 200));
});

test("reads of the pending block, its tag in any case ('Pending' on anvil), leave the head evmux reports at the nodes'", async (t) => {
  // No probe to put a wrong head right: what evmux takes from the answers stays.
  const { devnet, evmux } = await setup(t, 60_000);
  const head = devnet.blockNumber;
  for (const tag of ['pending', 'Pending', 'PENDING']) {
    const blocks = await Promise.all(Array.from({ length: 6 }, () => rpc<Block>(evmux.httpUrl, 'eth_getBlockByNumber', [tag, false])));
    assert.deepEqual(new Set(blocks.map((block) => Number(block.number))), new Set([head + 1]), `"${tag}" is the block after the head`);
  }
  assert.equal(Number(await rpc<string>(evmux.httpUrl, 'eth_blockNumber', [])), head);
  const status = JSON.parse((await evmux.get('/status')).body) as { upstreams: Array<{ head: string }> };
  assert.deepEqual(status.upstreams.map((u) => u.head), [String(head), String(head)]);
});

/** Reads by hash of a block and a transaction of it, each sent twice at once (so both nodes get one); what came back null or an error. */
async function readsByHash(evmux: TestGateway, hashes: { block: string; tx: string }): Promise<string[]> {
  const reads: Array<[string, unknown[]]> = [
    ['eth_getBlockByHash', [hashes.block, false]],
    ['eth_getTransactionReceipt', [hashes.tx]],
    ['eth_getTransactionByHash', [hashes.tx]],
    ['eth_getBalance', ['0x000000000000000000000000000000000000dEaD', { blockHash: hashes.block }]],
  ];
  const answers = await Promise.all(reads.flatMap(([method, params]) => [0, 1].map(async () => [method, await rpcAnswer(evmux.httpUrl, method, params)] as const)));
  return answers.filter(([, answer]) => answer.error !== undefined || answer.result === null).map(([method, answer]) => `${method}: ${JSON.stringify(answer)}`);
}

test('an indexer reading the block and receipt of a log the node ahead handed it is sent to a node that has them', async (t) => {
  // No probe between the block and the reads: what evmux knows of node0's new head, it learns
  // from the answers.
  const { devnet, evmux } = await setup(t, 60_000);
  const { n } = await blockOnNode0Only(devnet);
  // Polled up to 'latest' until node0 answers (the two nodes take turns).
  let logs: Array<{ blockNumber: string; blockHash: string; transactionHash: string }> = [];
  for (let poll = 0; poll < 20 && !logs.some((log) => log.blockNumber === hex(n)); poll++) {
    logs = await rpc(evmux.httpUrl, 'eth_getLogs', [{ fromBlock: hex(n - 1), toBlock: 'latest' }]);
  }
  const log = logs.find((entry) => entry.blockNumber === hex(n));
  assert.ok(log, 'node0 never answered eth_getLogs');
  const seen: string[] = [];
  for (let round = 0; round < 3; round++) seen.push(...(await readsByHash(evmux, { block: log.blockHash, tx: log.transactionHash })));
  assert.deepEqual(seen, []);
});

for (const method of ['eth_getFilterChanges', 'eth_getFilterLogs']) {
  test(`an event watcher reading the block and receipt of a log its filter's node (ahead) handed it by ${method} is sent to a node that has them`, async (t) => {
    // No probe between the block and the reads: what evmux knows of the filter's node's new head,
    // it learns from the filter's answer.
    const { devnet, evmux } = await setup(t, 60_000);
    const id = await rpc<string>(evmux.httpUrl, 'eth_newFilter', [{ address: devnet.emitterAddress, fromBlock: hex(devnet.blockNumber) }]);
    await rpc(evmux.httpUrl, 'eth_getFilterChanges', [id]);
    // The filter's node gets the block; the other is held a block behind (still usable).
    devnet.hold(1 - decodeFilterId(id).upstreamIndex);
    devnet.queueEmit();
    await devnet.mine(1);
    const n = devnet.blockNumber;
    const logs = await rpc<Array<{ blockNumber: string; blockHash: string; transactionHash: string }>>(evmux.httpUrl, method, [id]);
    const log = logs.find((entry) => entry.blockNumber === hex(n));
    assert.ok(log, `${method} handed over no log of block ${n}`);
    const seen: string[] = [];
    for (let round = 0; round < 3; round++) seen.push(...(await readsByHash(evmux, { block: log.blockHash, tx: log.transactionHash })));
    assert.deepEqual(seen, []);
  });
}

test("a block watcher reading a block by the hash its block filter's node (ahead) handed it is answered by a node that has it", async (t) => {
  // No probe between the block and the reads: evmux does not know the filter's node's new head,
  // and a block filter's answer (hashes only) does not tell it.
  const { devnet, evmux } = await setup(t, 60_000);
  const id = await rpc<string>(evmux.httpUrl, 'eth_newBlockFilter', []);
  await rpc(evmux.httpUrl, 'eth_getFilterChanges', [id]);
  // The filter's node gets the block; the other is held a block behind (still usable).
  devnet.hold(1 - decodeFilterId(id).upstreamIndex);
  devnet.queueEmit();
  await devnet.mine(1);
  const hashes = await rpc<string[]>(evmux.httpUrl, 'eth_getFilterChanges', [id]);
  const hash = hashes.at(-1);
  assert.ok(hash !== undefined, 'the block filter handed over no hash');
  const reads: Array<[string, unknown[]]> = [
    ['eth_getBlockByHash', [hash, false]],
    ['eth_getBlockTransactionCountByHash', [hash]],
    ['eth_getTransactionByBlockHashAndIndex', [hash, '0x0']],
    ['eth_getBlockReceipts', [hash]],
    ['eth_getBalance', ['0x000000000000000000000000000000000000dEaD', { blockHash: hash }]],
    ['eth_getTransactionCount', ['0x000000000000000000000000000000000000dEaD', { blockHash: hash }]],
  ];
  const seen: string[] = [];
  for (let round = 0; round < 3; round++) {
    // Each sent twice at once, so both nodes get one.
    const answers = await Promise.all(reads.flatMap(([method, params]) => [0, 1].map(async () => [method, await rpcAnswer(evmux.httpUrl, method, params)] as const)));
    seen.push(...answers.filter(([, answer]) => answer.error !== undefined || answer.result === null).map(([method, answer]) => `${method}: ${JSON.stringify(answer)}`));
  }
  assert.deepEqual(seen, []);

  // A hash no block filter handed over, answered null: one call, no second opinion.
  const asked = async (): Promise<number> => scrapeSum(evmux.httpUrl, 'evmux_requests_total', { method: 'eth_getBlockByHash' });
  const before = await asked();
  assert.equal(await rpc(evmux.httpUrl, 'eth_getBlockByHash', [`0x${'ab'.repeat(32)}`, false]), null);
  assert.equal((await asked()) - before, 1);
});
