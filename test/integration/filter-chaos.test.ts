/**
 * Filters polled over HTTP while the nodes of a 3-node lockstep anvil devnet are killed (kill -9)
 * and restarted, restarted while up (they come back without their filters), and held back and
 * released. Four sessions (each its own key, so their filters spread over the nodes) each poll a
 * logs filter and a block filter at random intervals. At the end every filter must have handed over
 * every log, or block hash, of every block after it exactly once and in order. A poll may fail
 * while no node can take the filter; the next one catches up. (Fixed seed: a failure names the one
 * that shows it.)
 *
 * No reorgs here: what a filter reports across one is the node's to say, and anvil's log filters
 * skip a new branch's blocks at heights they have already reported. filter-failover.test.ts has a
 * reorg while a filter's node is away.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { canonicalHashes, rpcAnswer } from '../support/node-rpc.js';
import { seededRandom } from '../support/seeded-random.js';
import { sleep, waitUntil } from '../support/stream-recorder.js';
import { decodeFilterId } from '../../src/router/filter-id.js';

const SEED = 7;
const CHAOS_MS = 15_000;
const SESSIONS = 4;

let devnet: LockstepDevnet;
let evmux: TestGateway;

before(async () => {
  devnet = await LockstepDevnet.start({ nodes: 3, blockTimeMs: 0 });
  evmux = await startGateway(devnet.nodes.map((node) => node.wsUrl), { subscriptions: { sessionKey: { source: 'query' } } }, { logLevel: 'warn' });
  // Ready means one node usable: the sessions' filters would all go to it.
  await waitUntil('every node usable', async () => (JSON.parse((await evmux.get('/readyz')).body) as { usableUpstreams: number }).usableUpstreams === 3, 10_000);
});

after(async () => {
  await evmux?.close();
  await devnet?.close();
});

interface Log {
  blockHash: string;
  logIndex: string;
}

function logKey(log: Log): string {
  return `${log.blockHash}:${log.logIndex}`;
}

/** One filter and everything its polls handed over. */
class PolledFilter {
  readonly items: unknown[] = [];
  readonly errors: string[] = [];

  constructor(
    readonly label: string,
    readonly url: string,
    readonly id: string,
  ) {}

  async poll(): Promise<void> {
    const answer = await rpcAnswer(this.url, 'eth_getFilterChanges', [this.id]);
    if (answer.error !== undefined) this.errors.push(`${answer.error.code} ${answer.error.message}`);
    else this.items.push(...(answer.result as unknown[]));
  }
}

/** How `received` differs from `expected`: each item once, in order, nothing else. */
function sequenceProblems(received: readonly string[], expected: readonly string[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const item of received) {
    if (seen.has(item)) problems.push(`${item} handed over twice`);
    seen.add(item);
  }
  const wanted = new Set(expected);
  for (const item of expected) if (!seen.has(item)) problems.push(`${item} missing`);
  for (const item of seen) if (!wanted.has(item)) problems.push(`${item} handed over, not of a block after the filter`);
  if (problems.length === 0 && received.join() !== expected.join()) problems.push('out of order');
  return problems;
}

test(`filters polled through random kills, restarts and holds hand over everything once, in order (seed ${SEED})`, { timeout: 90_000 }, async () => {
  const random = seededRandom(SEED);
  await devnet.mine(2);
  const start = BigInt(devnet.blockNumber);
  const filters: PolledFilter[] = [];
  for (let session = 0; session < SESSIONS; session++) {
    const url = `${evmux.httpUrl}?session=${session}`;
    for (const [kind, method, params] of [
      ['logs', 'eth_newFilter', [{ address: devnet.emitterAddress }]],
      ['blocks', 'eth_newBlockFilter', []],
    ] as const) {
      const made = await rpcAnswer(url, method, [...params]);
      assert.equal(typeof made.result, 'string', `${method} for session ${session}: ${JSON.stringify(made)}`);
      filters.push(new PolledFilter(`session ${session} ${kind}`, url, made.result as string));
    }
  }
  assert.ok(new Set(filters.map((filter) => decodeFilterId(filter.id).upstreamIndex)).size > 1, 'the filters are on more than one node');

  let polling = true;
  // The pollers draw from a generator of their own, so that the seed alone sets the chaos.
  const pollRandom = seededRandom(SEED + 1000);
  const pollers = filters.map(async (filter) => {
    while (polling) {
      await filter.poll();
      await sleep(30 + pollRandom() * 170);
    }
  });

  const down = new Set<number>();
  const held = new Set<number>();
  const actions: string[] = [];
  const until = Date.now() + CHAOS_MS;
  while (Date.now() < until) {
    const roll = random();
    const index = Math.floor(random() * 3);
    // At most two of the three nodes out (down or held) at once: one always serves.
    const free = down.size + held.size < 2 && !down.has(index) && !held.has(index);
    if (roll < 0.5) {
      for (let emit = Math.floor(random() * 3); emit >= 0; emit--) devnet.queueEmit();
      await devnet.mine(1);
      actions.push('mine');
    } else if (roll < 0.6 && free) {
      await devnet.kill(index);
      down.add(index);
      actions.push(`kill${index}`);
    } else if (roll < 0.7 && down.has(index)) {
      await devnet.restart(index);
      down.delete(index);
      actions.push(`restart${index}`);
    } else if (roll < 0.77 && !down.has(index) && !held.has(index)) {
      // Up, and back at once without its filters: polls get "filter not found".
      await devnet.restart(index);
      actions.push(`bounce${index}`);
    } else if (roll < 0.82 && free) {
      devnet.hold(index);
      held.add(index);
      actions.push(`hold${index}`);
    } else if (roll < 0.87 && held.has(index)) {
      await devnet.release(index);
      held.delete(index);
      actions.push(`release${index}`);
    }
    await sleep(50 + random() * 250);
  }
  for (const index of down) await devnet.restart(index);
  for (const index of held) await devnet.release(index);
  for (let block = 0; block < 3; block++) {
    devnet.queueEmit();
    await devnet.mine(1);
  }
  await sleep(2000);
  polling = false;
  await Promise.all(pollers);
  for (const filter of filters) await filter.poll();

  const end = BigInt(devnet.blockNumber);
  const node = devnet.nodes[0]!.httpUrl;
  const blocks = [...(await canonicalHashes(node, start + 1n, end)).values()];
  const range = { address: devnet.emitterAddress, fromBlock: `0x${(start + 1n).toString(16)}`, toBlock: `0x${end.toString(16)}` };
  const logs = ((await rpcAnswer(node, 'eth_getLogs', [range])).result as Log[]).map(logKey);

  const problems: string[] = [];
  for (const filter of filters) {
    const found = filter.label.endsWith('logs') ? sequenceProblems((filter.items as Log[]).map(logKey), logs) : sequenceProblems(filter.items as string[], blocks);
    for (const problem of found.slice(0, 5)) problems.push(`${filter.label} (${filter.id}): ${problem}`);
    // -32050: no node could take the filter at that moment; anything else is a wrong answer.
    for (const error of filter.errors) if (!error.startsWith('-32050 ')) problems.push(`${filter.label}: ${error}`);
  }
  const moves = (await evmux.metric('evmux_filter_moves_total', { kind: 'logs', reason: 'node_down' })) ?? 0;
  assert.ok(moves >= 1, `a logs filter moved off a node that went down (${moves})`);
  assert.deepEqual(problems, [], `after ${actions.join(' ')}`);
  const count = (kind: string): number => actions.filter((action) => action.startsWith(kind)).length;
  assert.ok(count('kill') >= 3 && count('bounce') >= 1 && count('hold') >= 1, `enough happened: ${actions.join(' ')}`);
});
