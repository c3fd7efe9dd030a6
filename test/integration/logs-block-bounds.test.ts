/**
 * A logs subscription with block numbers in fromBlock and toBlock delivers the logs of those blocks
 * only, as geth and anvil do: a toBlock already past delivers nothing, a fromBlock ahead of the head
 * waits for that block, a range delivers its blocks, also across a failover (the blocks a new node
 * replays are held to the bounds too). Tags bound nothing. Checked against anvil itself.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { startGateway } from '../support/gateway.js';
import { canonicalHashes, canonicalLogs } from '../support/node-rpc.js';
import { logProblems, pinnedUpstream, sleep, StreamClient, waitUntil } from '../support/stream-recorder.js';

const hex = (n: number): string => `0x${n.toString(16)}`;

test('fromBlock and toBlock numbers bound which blocks a logs subscription delivers, across a failover, as anvil bounds its own', { timeout: 60_000 }, async (t) => {
  const devnet = await LockstepDevnet.start({ nodes: 3, blockTimeMs: 0, traffic: true });
  t.after(() => devnet.close());
  // evmux in front of two nodes; the third, never killed, is asked straight for what anvil streams.
  const evmux = await startGateway(devnet.nodes.slice(0, 2).map((node) => node.wsUrl));
  t.after(() => evmux.close());
  await devnet.mine(4);
  const head = devnet.blockNumber;
  const address = devnet.emitterAddress;
  const filters: Record<string, Record<string, unknown>> = {
    past: { address, toBlock: '0x2' },
    ahead: { address, fromBlock: hex(head + 3) },
    range: { address, fromBlock: hex(head + 2), toBlock: hex(head + 5) },
    tags: { address, fromBlock: 'earliest', toBlock: 'latest' },
  };
  const client = await StreamClient.open(evmux.wsUrl, 'evmux');
  t.after(() => client.close());
  const direct = await StreamClient.open(devnet.nodes[2]!.wsUrl, 'anvil');
  t.after(() => direct.close());
  const ids: Record<string, { evmux: string; anvil: string }> = {};
  for (const [name, filter] of Object.entries(filters)) {
    ids[name] = { evmux: await client.subscribe(['logs', filter]), anvil: await direct.subscribe(['logs', filter]) };
  }
  await sleep(300);

  for (let i = 0; i < 3; i++) await devnet.mine(1);
  // Half way through the range, the streams' node dies; they move to the other.
  const pinned = pinnedUpstream((await evmux.get('/status')).body, 'logs');
  assert.ok(pinned === 'node0' || pinned === 'node1', `the streams are on one node: ${pinned}`);
  await devnet.kill(pinned === 'node0' ? 0 : 1);
  for (let i = 0; i < 4; i++) await devnet.mine(1);
  const end = devnet.blockNumber;
  const node = devnet.nodes[2]!.httpUrl;
  await waitUntil('the unbounded stream at the head', () => client.logs(ids['tags']!.evmux).at(-1)?.blockNumber === BigInt(end), 10_000);
  await sleep(300);

  const hashes = new Set((await canonicalHashes(node, 0n, BigInt(end))).values());
  const expected: Record<string, [number, number]> = { past: [head + 1, 0], ahead: [head + 3, end], range: [head + 2, head + 5], tags: [head + 1, end] };
  for (const [name, [from, to]] of Object.entries(expected)) {
    const got = client.logs(ids[name]!.evmux);
    const want = from > to ? [] : await canonicalLogs(node, { address }, BigInt(from), BigInt(to));
    if (want.length === 0) assert.deepEqual(got, [], name);
    else assert.deepEqual(logProblems(got, want, hashes, BigInt(from), BigInt(to)), [], name);
  }
  for (const name of Object.keys(filters)) {
    const blocks = (notes: Array<{ blockNumber: bigint }>): bigint[] => notes.map((log) => log.blockNumber);
    assert.deepEqual(blocks(client.logs(ids[name]!.evmux)), blocks(direct.logs(ids[name]!.anvil)), `${name}: as anvil streams it`);
  }
});
