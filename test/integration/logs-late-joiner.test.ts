/**
 * A logs subscription that starts after another one of the same filter (so it shares its group):
 * on a reorg that orphans blocks delivered before its start and blocks delivered after it, it gets
 * removed:true only for the logs it was sent, while the earlier subscription gets all of its
 * removals; both get every canonical log once, under their unchanged ids. Real anvil nodes (a
 * lockstep devnet that mines only when told) behind an in-process evmux, raw ws clients.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { logProblems, sleep, StreamClient, toLog, waitUntil, type LogNote } from '../support/stream-recorder.js';

const EMITS_PER_BLOCK = 2;
/**
 * A logs subscription starts (is anchored at the node's head) in its topic's queue right after
 * its reply; nothing is mined until that surely happened, so its first block is known.
 */
const START_SETTLE_MS = 300;

let devnet: LockstepDevnet;
let evmux: TestGateway;
const clients: StreamClient[] = [];

before(async () => {
  devnet = await LockstepDevnet.start({ nodes: 2, blockTimeMs: 0, traffic: false });
  evmux = await startGateway(devnet.nodes.map((node) => node.wsUrl));
});

after(async () => {
  for (const client of clients) client.close();
  await evmux?.close();
  await devnet?.close();
});

async function rpc<T>(method: string, params: unknown[]): Promise<T> {
  const response = await fetch(devnet.nodes[0]!.httpUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) });
  const body = (await response.json()) as { result?: T; error?: { message: string } };
  if (body.error !== undefined) throw new Error(`${method}: ${body.error.message}`);
  return body.result as T;
}

/** `count` blocks with emitter logs in each. */
async function mineWithLogs(count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < EMITS_PER_BLOCK; j++) devnet.queueEmit();
    await devnet.mine(1);
  }
}

const hex = (n: bigint): string => `0x${n.toString(16)}`;
const key = (log: LogNote): string => `${log.blockHash}#${log.logIndex}`;

/** The canonical chain from node0: emitter logs from `from` up, and every block hash. */
async function canonical(from: bigint): Promise<{ logs: LogNote[]; hashes: Set<string>; to: bigint }> {
  const to = BigInt(await rpc<string>('eth_blockNumber', []));
  const raw = await rpc<Array<Record<string, unknown>>>('eth_getLogs', [{ fromBlock: hex(from), toBlock: hex(to), address: devnet.emitterAddress }]);
  const hashes = new Set<string>();
  for (let n = 0n; n <= to; n++) hashes.add((await rpc<{ hash: string }>('eth_getBlockByNumber', [hex(n), false])).hash);
  return { logs: raw.map(toLog), hashes, to };
}

/** Logs of the blocks `from..to` that a client has, live. */
function liveIn(logs: LogNote[], from: bigint, to: bigint): Set<string> {
  return new Set(logs.filter((log) => !log.removed && log.blockNumber >= from && log.blockNumber <= to).map(key));
}

test('a late logs subscriber gets removed:true only for logs it was sent; the early one gets all its removals', { timeout: 30_000 }, async () => {
  const filter = ['logs', { address: devnet.emitterAddress }];
  const early = await StreamClient.open(evmux.wsUrl, 'early');
  const late = await StreamClient.open(evmux.wsUrl, 'late');
  clients.push(early, late);

  const earlyFrom = BigInt(devnet.blockNumber) + 1n;
  const earlyId = await early.subscribe(filter);
  await sleep(START_SETTLE_MS);
  await mineWithLogs(3);
  const preLate = BigInt(devnet.blockNumber); // the last block only the early client was sent
  await waitUntil('early client has the first blocks', () => early.logs(earlyId).length === 3 * EMITS_PER_BLOCK, 10_000);

  const lateFrom = preLate + 1n;
  const lateId = await late.subscribe(filter);
  assert.equal(lateId, earlyId, 'ids come from the filter: both clients share the group and its bytes');
  await sleep(START_SETTLE_MS);
  await mineWithLogs(2);
  const tip = BigInt(devnet.blockNumber);
  await waitUntil('both have the blocks after the late start', () => early.logs(earlyId).length === 5 * EMITS_PER_BLOCK && late.logs(lateId).length === 2 * EMITS_PER_BLOCK, 10_000);
  const earlyBefore = early.logs(earlyId);
  const lateBefore = late.logs(lateId);
  assert.ok(lateBefore.every((log) => log.blockNumber >= lateFrom), 'the late client was not sent logs of earlier blocks');

  // Orphans preLate (sent to the early client only) and the two blocks sent to both.
  await devnet.reorg(3);
  await mineWithLogs(2);
  const reference = await canonical(earlyFrom);
  const has = (logs: LogNote[], from: bigint): boolean => reference.logs.filter((log) => log.blockNumber >= from).every((wanted) => logs.some((log) => !log.removed && key(log) === key(wanted)));
  await waitUntil('both have every canonical log', () => has(early.logs(earlyId), earlyFrom) && has(late.logs(lateId), lateFrom), 15_000);

  const earlyLogs = early.logs(earlyId);
  const lateLogs = late.logs(lateId);
  const orphanedEarly = [...liveIn(earlyBefore, preLate, tip)];
  const orphanedLate = [...liveIn(lateBefore, preLate, tip)];
  assert.equal(orphanedEarly.length, 3 * EMITS_PER_BLOCK);
  assert.equal(orphanedLate.length, 2 * EMITS_PER_BLOCK);
  assert.deepEqual(new Set(earlyLogs.filter((log) => log.removed).map(key)), new Set(orphanedEarly), 'the early client: removals for every orphaned log it had');
  assert.deepEqual(new Set(lateLogs.filter((log) => log.removed).map(key)), new Set(orphanedLate), 'the late client: removals only for the logs it was sent');
  assert.deepEqual(logProblems(earlyLogs, reference.logs, reference.hashes, earlyFrom, reference.to), [], 'early client stream');
  assert.deepEqual(logProblems(lateLogs, reference.logs, reference.hashes, lateFrom, reference.to), [], 'late client stream');
  assert.deepEqual(early.foreign, []);
  assert.deepEqual(late.foreign, []);
  assert.deepEqual([...early.received.keys()], [earlyId]);
  assert.deepEqual([...late.received.keys()], [lateId]);
});
