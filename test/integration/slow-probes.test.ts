/**
 * health.probeIntervalMs above health.stallMs: a node known by its probes only is behind the node
 * whose newHeads stream evmux follows for as long as between two probes. evmux once judged such
 * nodes stalled while they went on, and the node held back kept every stream (a wait of a probe
 * interval for each head). A node is now asked its head before it is judged stalled. Real anvil
 * nodes in lockstep; the node that carries the stream is held back.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalHashes } from '../support/node-rpc.js';
import { devnetGatewayForFile } from '../support/devnet-gateway.js';
import { headProblems, pinnedUpstream, sleep, StreamClient, waitUntil } from '../support/stream-recorder.js';

const STALL_MS = 2_000;
const BLOCK_MS = 200;

const fixture = devnetGatewayForFile(3, { config: { health: { probeIntervalMs: 60_000, stallMs: STALL_MS } }, traffic: false });

test('probes further apart than stallMs: the nodes that go on are not judged stalled, and a stream on a node held back moves within stallMs', async (t) => {
  const { devnet, evmux } = fixture;
  const ticker = setInterval(() => void devnet.mine(), BLOCK_MS);
  t.after(() => clearInterval(ticker));
  const client = await StreamClient.open(evmux.wsUrl, 'heads');
  t.after(() => client.close());
  const id = await client.subscribe(['newHeads']);
  const from = BigInt((await client.first(id)).result['number'] as string);
  const arrivals: number[] = [];
  client.ws.on('message', () => arrivals.push(performance.now()));
  await sleep(STALL_MS * 1.5);
  const pinned = pinnedUpstream((await evmux.get('/status')).body);
  assert.ok(pinned !== undefined, 'the stream is on a node');
  const held = Number(pinned.replace('node', ''));

  devnet.hold(held);
  const heldAt = performance.now();
  await waitUntil('the stream moved off the held node', async () => pinnedUpstream((await evmux.get('/status')).body) !== pinned, STALL_MS * 3);
  await sleep(STALL_MS * 2);
  const stalledLines = evmux.logs.filter((line) => line['msg'] === 'upstream not usable' && line['stalled'] === true && line['upstream'] !== pinned);
  assert.deepEqual(stalledLines, [], 'no node that went on is judged stalled');
  clearInterval(ticker);
  await devnet.release(held);

  const upTo = BigInt(devnet.blockNumber);
  await waitUntil('the stream reached the head', () => client.tip(id) >= upTo, 5_000);
  const afterHold = arrivals.filter((at) => at >= heldAt);
  const waits = afterHold.map((at, i) => at - (i === 0 ? heldAt : afterHold[i - 1]!));
  const longest = Math.max(...waits);
  assert.ok(longest < STALL_MS + 1_500, `the longest wait for a head after the hold was ${Math.round(longest)} ms`);
  const canonical = await canonicalHashes(devnet.nodes[(held + 1) % 3]!.httpUrl, from, upTo);
  assert.deepEqual(headProblems(client.heads(id), canonical, upTo, 'unchecked'), []);
});

test('probes further apart than stallMs, after a quiet spell: a stream on a node held back as blocks resume still moves', async (t) => {
  const { devnet, evmux } = fixture;
  const client = await StreamClient.open(evmux.wsUrl, 'heads after quiet');
  t.after(() => client.close());
  const id = await client.subscribe(['newHeads']);
  await devnet.mine();
  const from = BigInt((await client.first(id)).result['number'] as string);
  // Every node level, and no block for longer than stallMs: no node is known ahead of another.
  await sleep(STALL_MS * 2);
  const pinned = pinnedUpstream((await evmux.get('/status')).body);
  assert.ok(pinned !== undefined);
  const held = Number(pinned.replace('node', ''));
  devnet.hold(held);
  const heldAt = performance.now();
  const ticker = setInterval(() => void devnet.mine(), BLOCK_MS);
  t.after(() => clearInterval(ticker));
  const arrivals: number[] = [];
  client.ws.on('message', () => arrivals.push(performance.now()));
  await waitUntil('the stream moved off the held node', async () => pinnedUpstream((await evmux.get('/status')).body) !== pinned, STALL_MS * 4);
  clearInterval(ticker);
  await devnet.release(held);
  const upTo = BigInt(devnet.blockNumber);
  await waitUntil('the stream reached the head', () => client.tip(id) >= upTo, 5_000);
  const firstAfter = arrivals.find((at) => at >= heldAt)!;
  assert.ok(firstAfter - heldAt < 2 * STALL_MS + 1_500, `the first head after the hold came ${Math.round(firstAfter - heldAt)} ms after it`);
  const canonical = await canonicalHashes(devnet.nodes[(held + 1) % 3]!.httpUrl, from, upTo);
  assert.deepEqual(headProblems(client.heads(id), canonical, upTo, 'unchecked'), []);
});
