/**
 * Clients that subscribe at random moments while the nodes of a 3-node lockstep anvil devnet are
 * killed (kill -9) and restarted, held back (lagging until released), and the chain is reorged (up
 * to 3 blocks, so often deeper than a stream that just started): streams start just before, during
 * and just after failovers and reorgs. Each client's logs filter is its own, so each starts a
 * stream of its own. Every client's newHeads and logs streams are then checked against the chain:
 * no height missing, no hash twice, parent links hold, every log of a block after its start once
 * and in order, removed when its block was replaced. (Fixed seeds: a failure names the one that
 * shows it.)
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { seededRandom } from '../support/seeded-random.js';
import { canonicalHashes, canonicalLogs } from '../support/node-rpc.js';
import { headProblems, logProblems, sleep, StreamClient, waitUntil, type GreetingWindow } from '../support/stream-recorder.js';

const SEED = 4;
const CHAOS_MS = 20_000;
const MAX_CLIENTS = 10;
const MAX_LAG = 5;
/** Reorgs at most this often, so streams also run between them. */
const REORG_GAP_MS = 3000;

let devnet: LockstepDevnet;
let evmux: TestGateway;

before(async () => {
  devnet = await LockstepDevnet.start({ nodes: 3, blockTimeMs: 250, traffic: true });
  evmux = await startGateway(
    devnet.nodes.map((node) => node.wsUrl),
    { health: { maxLagBlocks: MAX_LAG }, subscriptions: { holdDownMs: 800, sessionKey: { source: 'query' } } },
    { logLevel: 'warn' },
  );
});

after(async () => {
  await evmux?.close();
  await devnet?.close();
});

interface Joined {
  client: StreamClient;
  heads: string;
  logs: string;
  /** heights the greeting may have (the devnet's height around the subscribe) */
  greeting: GreetingWindow;
  /** the first block all of whose logs are due: after the greeting's */
  logsFrom: bigint;
}

test(`clients joining at random during random kills, restarts, holds and reorgs all get gapless, exact streams (seed ${SEED})`, { timeout: 90_000 }, async () => {
  const random = seededRandom(SEED);
  await waitUntil('three usable upstreams', async () => JSON.parse((await evmux.get('/readyz')).body).usableUpstreams === 3, 10_000);
  await devnet.mine(3);
  const address = devnet.emitterAddress;
  const joined: Joined[] = [];
  const down = new Set<number>();
  const actions: string[] = [];
  let reorgedAt = 0;
  let held: number | undefined;
  const join = async (): Promise<void> => {
    // Each with its own session key: they spread over the nodes, so every failover moves some.
    const client = await StreamClient.open(`${evmux.wsUrl}?session=${joined.length}`, `client${joined.length}`);
    // The node a client is pinned to may be held back, up to MAX_LAG blocks before it is dropped.
    const low = BigInt(Math.max(0, devnet.blockNumber - 1 - MAX_LAG));
    const heads = await client.subscribe(['newHeads']);
    // A filter of its own (the emitter's event, or a topic nothing logs), matching the same logs:
    // each client starts a stream of its own, anchored at the head of its subscribe.
    const own = `0x${(joined.length + 1).toString(16).padStart(64, '0')}`;
    const logs = await client.subscribe(['logs', { address, topics: [[devnet.emitterTopic, own]] }]);
    await client.first(heads);
    const high = BigInt(devnet.blockNumber) + 1n;
    joined.push({ client, heads, logs, greeting: { low, high }, logsFrom: high + 1n });
  };

  const until = Date.now() + CHAOS_MS;
  while (Date.now() < until) {
    const roll = random();
    const up = [0, 1, 2].filter((index) => !down.has(index));
    if (roll < 0.4 && joined.length < MAX_CLIENTS) {
      await join();
      actions.push('join');
    } else if (roll < 0.5 && Date.now() - reorgedAt > REORG_GAP_MS) {
      reorgedAt = Date.now();
      await devnet.reorg(1 + Math.floor(random() * 3));
      actions.push('reorg');
    } else if (roll < 0.55 && held === undefined && up.length > 1) {
      held = up[Math.floor(random() * up.length)]!;
      devnet.hold(held);
      actions.push(`hold${held}`);
    } else if (roll < 0.6 && held !== undefined && !down.has(held)) {
      await devnet.release(held);
      actions.push(`release${held}`);
      held = undefined;
    } else if (roll < 0.75 && up.length > 1) {
      const index = up[Math.floor(random() * up.length)]!;
      // Never the last node up besides a held one: alone, it lags without bound, and rightly
      // greets clients with its own head, further behind than a greeting window allows.
      if (up.some((other) => other !== index && other !== held)) {
        down.add(index);
        await devnet.kill(index);
        actions.push(`kill${index}`);
      }
    } else if (down.size > 0) {
      const index = [...down][0]!;
      down.delete(index);
      await devnet.restart(index);
      actions.push(`restart${index}`);
    }
    await sleep(200 + random() * 600);
  }
  for (const index of down) await devnet.restart(index);
  if (held !== undefined) await devnet.release(held);
  await sleep(2000);

  const end = BigInt(devnet.blockNumber) - 1n;
  await waitUntil('every client reached the end height', () => joined.every(({ client, heads }) => client.tip(heads) >= end), 15_000);
  await sleep(500);
  const lowest = joined.reduce((low, { greeting }) => (greeting.low < low ? greeting.low : low), end);
  const canonical = await canonicalHashes(devnet.nodes[0]!.httpUrl, lowest, end);
  const hashes = new Set(canonical.values());
  const allLogs = await canonicalLogs(devnet.nodes[0]!.httpUrl, { address }, lowest, end);
  const problems: string[] = [];
  for (const { client, heads, logs, greeting, logsFrom } of joined) {
    for (const problem of headProblems(client.heads(heads), canonical, end, greeting)) problems.push(`${client.label} newHeads: ${problem}`);
    for (const problem of logProblems(client.logs(logs), allLogs, hashes, logsFrom, end)) problems.push(`${client.label} logs: ${problem}`);
    if (client.foreign.length > 0) problems.push(`${client.label}: notifications under ids it never got`);
    if (client.closeCode !== undefined) problems.push(`${client.label}: closed with ${client.closeCode}`);
    client.close();
  }
  const count = (kind: string): number => actions.filter((action) => action.startsWith(kind)).length;
  assert.ok(joined.length >= 5 && count('kill') >= 3 && count('reorg') >= 2 && count('hold') >= 1, `enough happened: ${actions.join(' ')}`);
  assert.deepEqual(problems, [], `after ${actions.join(' ')}`);
});
