import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeEventLog, keccak256, numberToHex, type Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import WebSocket from 'ws';
import { DEV_PRIVATE_KEYS } from '../../src/devnet/dev-accounts.js';
import { EMITTER_EVENT_ABI, PING_TOPIC } from '../../src/devnet/emitter-contract.js';
import { LockstepDevnet, type DevnetOptions } from '../../src/devnet/lockstep-devnet.js';

interface Block {
  number: Hex;
  hash: Hex;
  parentHash: Hex;
  mixHash: Hex;
  timestamp: Hex;
  transactions: Hex[];
}
interface Log {
  address: Hex;
  topics: [Hex, ...Hex[]];
  data: Hex;
  blockNumber: Hex;
  blockHash: Hex;
}

let nextId = 1;
async function rpc<T>(url: string, method: string, params: unknown[] = []): Promise<T> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: nextId++, method, params }),
  });
  const body = (await res.json()) as { result?: T; error?: { message: string } };
  if (body.error !== undefined) throw new Error(`${method}: ${body.error.message}`);
  return body.result as T;
}

function block(url: string, n: number | 'latest'): Promise<Block> {
  return rpc<Block>(url, 'eth_getBlockByNumber', [n === 'latest' ? n : numberToHex(n), false]);
}

/** Every node has the same block (hash and mixHash) at every height 0..upTo. */
async function assertSameChain(devnet: LockstepDevnet, upTo: number, nodes = devnet.nodes): Promise<void> {
  for (let n = 0; n <= upTo; n++) {
    const blocks = await Promise.all(nodes.map((node) => block(node.httpUrl, n)));
    const [first] = blocks;
    assert.ok(first, `block ${n} exists`);
    for (const [i, b] of blocks.entries()) {
      assert.equal(b.hash, first.hash, `${nodes[i]?.name} block ${n} hash`);
      assert.equal(b.mixHash, first.mixHash, `${nodes[i]?.name} block ${n} mixHash`);
    }
  }
}

/** Running process (a zombie left for a non-reaping init counts as dead). */
function isAlive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true; // no procfs: trust kill(0)
  }
}

const open: LockstepDevnet[] = [];
async function startDevnet(options: DevnetOptions = {}): Promise<LockstepDevnet> {
  const devnet = await LockstepDevnet.start({ blockTimeMs: 0, ...options });
  open.push(devnet);
  return devnet;
}
after(async () => {
  await Promise.all(open.map((d) => d.close()));
});

const GWEI = 1_000_000_000n;
async function signEmitterCall(devnet: LockstepDevnet, nonce: number, value: bigint): Promise<Hex> {
  return privateKeyToAccount(devnet.testAccountKey).signTransaction({
    type: 'eip1559',
    chainId: devnet.chainId,
    nonce,
    to: devnet.emitterAddress,
    data: numberToHex(value, { size: 32 }),
    gas: 100_000n,
    maxFeePerGas: 10n * GWEI,
    maxPriorityFeePerGas: GWEI,
  });
}

describe('lockstep devnet', { timeout: 30_000 }, () => {
  test('three nodes hold identical chains with traffic, fast to start', async () => {
    const t0 = performance.now();
    const devnet = await startDevnet();
    const startMs = performance.now() - t0;
    assert.ok(startMs < 2000, `started in ${startMs.toFixed(0)} ms`);
    assert.equal(devnet.nodes.length, 3);
    assert.deepEqual(
      devnet.nodes.map((n) => n.name),
      ['node0', 'node1', 'node2'],
    );
    assert.equal(new Set(devnet.nodes.map((n) => n.port)).size, 3);

    await devnet.mine(5);
    assert.equal(devnet.blockNumber, 6);
    await assertSameChain(devnet, 6);
    for (const node of devnet.nodes) {
      assert.equal(Number(await rpc<Hex>(node.httpUrl, 'eth_chainId')), 31337);
      const head = await block(node.httpUrl, 'latest');
      assert.equal(Number(head.number), 6);
      assert.equal(head.transactions.length, 2, 'transfer + emitter call');
    }
    const first = await block(devnet.nodes[0]!.httpUrl, 1);
    assert.equal(first.transactions.length, 3, 'deploy + transfer + emitter call');

    // The documented dev keys belong to anvil's funded accounts.
    const accounts = await rpc<string[]>(devnet.nodes[0]!.httpUrl, 'eth_accounts');
    for (const key of DEV_PRIVATE_KEYS) {
      assert.ok(accounts.includes(privateKeyToAccount(key).address.toLowerCase()), key);
    }
    // eth_call with empty calldata returns the ping count: one per block.
    const call = { to: devnet.emitterAddress, data: '0x' };
    const count = await rpc<Hex>(devnet.nodes[1]!.httpUrl, 'eth_call', [call, 'latest']);
    assert.equal(BigInt(count), 6n);
  });

  test('emitter logs are found with eth_getLogs, including caller-signed transactions', async () => {
    const devnet = await startDevnet({ traffic: false, nodes: 2 });
    devnet.queueEmit(42n);
    devnet.queueRawTransaction(await signEmitterCall(devnet, 0, 7n));
    await devnet.mine();
    const testAccount = privateKeyToAccount(devnet.testAccountKey).address;
    const trafficAccount = privateKeyToAccount(DEV_PRIVATE_KEYS[0]).address;
    for (const node of devnet.nodes) {
      const logs = await rpc<Log[]>(node.httpUrl, 'eth_getLogs', [
        { address: devnet.emitterAddress, topics: [devnet.emitterTopic], fromBlock: '0x0', toBlock: 'latest' },
      ]);
      const decoded = logs.map(
        (log) => decodeEventLog({ abi: EMITTER_EVENT_ABI, data: log.data, topics: log.topics }).args,
      );
      assert.deepEqual(decoded, [
        { from: trafficAccount, value: 42n },
        { from: testAccount, value: 7n },
      ]);
      assert.ok(logs.every((log) => Number(log.blockNumber) === 2));
    }
    assert.equal(devnet.emitterTopic, PING_TOPIC);
    await assertSameChain(devnet, 2);
  });

  test('kill + restart converges on the same chain and keeps mining in lockstep', async () => {
    const devnet = await startDevnet();
    await devnet.mine(3);
    const node = devnet.nodes[1]!;
    const { port, pid } = node;
    await devnet.kill(1);
    assert.equal(node.running, false);
    assert.equal(isAlive(pid), false, 'anvil process is gone');
    await assert.rejects(rpc(node.httpUrl, 'eth_blockNumber'));
    await assert.rejects(devnet.head(1));

    await devnet.mine(3);
    assert.equal((await devnet.head(0)).number, 7n);
    await devnet.restart(1);
    assert.equal(node.running, true);
    assert.equal(node.port, port, 'same port after restart');
    assert.notEqual(node.pid, pid);
    assert.deepEqual(await devnet.head(1), await devnet.head(0));

    await devnet.mine(2);
    assert.deepEqual(await devnet.head(1), await devnet.head(2));
    await assertSameChain(devnet, 9);
  });

  test('a node restarted after a reorg replays the reorged history to the same hashes', async () => {
    const devnet = await startDevnet();
    await devnet.mine(10);
    // The others rolled the reorg back and mined the new branch; the restarted node mines it fresh.
    await devnet.reorg(3);
    await devnet.mine(2);
    await devnet.kill(1);
    await devnet.restart(1);
    await devnet.mine(2);
    await assertSameChain(devnet, 16);
  });

  test('hold makes a node lag, release catches it up', async () => {
    const devnet = await startDevnet();
    await devnet.mine(2);
    devnet.hold(2);
    assert.equal(devnet.nodes[2]!.held, true);
    await devnet.mine(3);
    const lagging = await devnet.head(2);
    const leading = await devnet.head(0);
    assert.equal(lagging.number, 3n);
    assert.equal(leading.number, 6n);
    assert.equal((await block(devnet.nodes[0]!.httpUrl, 3)).hash, lagging.hash, 'lagging node is on the same chain');

    await devnet.release(2);
    assert.equal(devnet.nodes[2]!.held, false);
    assert.deepEqual(await devnet.head(2), await devnet.head(0));
    await devnet.mine();
    await assertSameChain(devnet, 7);
  });

  test('reorg puts every node on the same longer branch and ws subscribers see it', async () => {
    const devnet = await startDevnet();
    const ws = new WebSocket(devnet.nodes[0]!.wsUrl);
    const heads: Block[] = [];
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    ws.on('message', (data: Buffer) => {
      const msg = JSON.parse(data.toString()) as { method?: string; params?: { result: Block } };
      if (msg.method === 'eth_subscription' && msg.params) heads.push(msg.params.result);
    });
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_subscribe', params: ['newHeads'] }));
    await sleep(50);

    await devnet.mine(3); // head 4
    const callerRaw = await signEmitterCall(devnet, 0, 9n);
    devnet.queueRawTransaction(callerRaw);
    await devnet.mine(); // head 5, holds the caller's tx
    devnet.hold(2); // misses the reorg, must be rolled back on release
    const url = devnet.nodes[0]!.httpUrl;
    const old5 = await block(url, 5);
    const old4 = await block(url, 4);
    const fork = await block(url, 3);
    const logsOf = (fromBlock: number, toBlock: number): Promise<Log[]> =>
      rpc<Log[]>(url, 'eth_getLogs', [
        { address: devnet.emitterAddress, fromBlock: numberToHex(fromBlock), toBlock: numberToHex(toBlock) },
      ]);
    const oldLogs = await logsOf(4, 5);

    await devnet.reorg(2); // replaces 4 and 5 with 4', 5', 6'
    assert.equal(devnet.blockNumber, 6);
    const newHead = await devnet.head(0);
    assert.equal(newHead.number, 6n);
    assert.deepEqual(await devnet.head(1), newHead);
    const new4 = await block(url, 4);
    const new5 = await block(url, 5);
    assert.notEqual(new4.hash, old4.hash);
    assert.notEqual(new5.hash, old5.hash);
    assert.equal(new4.parentHash, fork.hash);
    assert.ok(Number(new4.timestamp) > Number(old4.timestamp));

    // The caller's transaction left with block 5 and came back in block 4'.
    const receipt = await rpc<{ blockHash: Hex } | null>(url, 'eth_getTransactionReceipt', [keccak256(callerRaw)]);
    assert.equal(receipt?.blockHash, new4.hash);

    // Old-branch logs are gone from the canonical chain; the new branch has its own.
    const newLogs = await logsOf(4, 6);
    assert.ok(oldLogs.length > 0 && newLogs.length > 0);
    const newBlockHashes = new Set([new4.hash, new5.hash, newHead.hash]);
    assert.ok(newLogs.every((log) => newBlockHashes.has(log.blockHash)));
    assert.ok(oldLogs.every((log) => !newBlockHashes.has(log.blockHash)));

    // The subscriber got the new branch from the fork point on.
    for (let i = 0; i < 100 && !heads.some((h) => h.hash === newHead.hash); i++) await sleep(20);
    ws.close();
    const afterReorg = heads.slice(heads.findIndex((h) => h.hash === old5.hash) + 1);
    assert.deepEqual(
      afterReorg.map((h) => [Number(h.number), h.hash]),
      [
        [4, new4.hash],
        [5, new5.hash],
        [6, newHead.hash],
      ],
    );

    // The held node still has the old branch; release rolls it back and catches it up.
    assert.equal((await devnet.head(2)).hash, old5.hash);
    await devnet.release(2);
    assert.deepEqual(await devnet.head(2), newHead);
    await devnet.mine();
    await assertSameChain(devnet, 7);
    await assert.rejects(devnet.reorg(7), RangeError, 'block 1 (the emitter) cannot be reorged away');
  });

  test('the block timer mines by itself, without racing mine() or a restart', async () => {
    const devnet = await startDevnet({ blockTimeMs: 100 });
    for (let i = 0; i < 100 && devnet.blockNumber < 4; i++) await sleep(20);
    assert.ok(devnet.blockNumber >= 4, `timer mined up to ${devnet.blockNumber}`);
    const before = devnet.blockNumber;
    await Promise.all([devnet.mine(3), devnet.mine(3), devnet.kill(2)]);
    assert.ok(devnet.blockNumber >= before + 6);
    await sleep(250); // node2 misses a few timed blocks
    await devnet.restart(2);
    await sleep(250);
    // Blocks below the lowest head are final: compare them while the timer keeps going.
    const heights = await Promise.all(devnet.nodes.map(async (_, i) => Number((await devnet.head(i)).number)));
    const lowest = Math.min(...heights);
    assert.ok(Math.max(...heights) - lowest <= 1, `heads ${heights.join(', ')}`);
    assert.ok(lowest >= before + 8, `timer kept mining (${lowest})`);
    await assertSameChain(devnet, lowest);

    const pids = devnet.nodes.map((n) => n.pid);
    await devnet.close();
    assert.ok(devnet.nodes.every((n) => !n.running), 'no node running after close');
    assert.ok(pids.every((pid) => !isAlive(pid)), 'close leaves no process');
    await assert.rejects(devnet.mine(), /closed/);
  });

  test('a process that never calls close() still exits and takes its anvil nodes with it', async () => {
    const moduleUrl = new URL('../../src/devnet/lockstep-devnet.ts', import.meta.url).href;
    const script = [
      `import { LockstepDevnet } from ${JSON.stringify(moduleUrl)};`,
      'const devnet = await LockstepDevnet.start({ blockTimeMs: 50 });',
      'console.log(JSON.stringify(devnet.nodes.map((n) => [n.pid, n.httpUrl])));',
    ].join('\n');
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', script],
        { timeout: 10_000 },
        (error, out) => (error ? reject(error) : resolve(out)),
      );
    });
    const nodes = JSON.parse(stdout) as [number, string][];
    assert.equal(nodes.length, 3);
    for (const [pid, url] of nodes) {
      assert.equal(isAlive(pid), false, `anvil ${pid} is gone`);
      await assert.rejects(rpc(url, 'eth_chainId'));
    }
  });
});
