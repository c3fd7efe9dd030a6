/**
 * Polling logs filters while the session's node is a block behind the other (usable: within
 * health.maxLagBlocks), on real anvil nodes of one chain. anvil answers eth_getFilterLogs up to its
 * own head, and refuses a filter from a block past it; through evmux, eth_getFilterLogs has the logs
 * eth_getLogs of the same filter has, and a filter from the head evmux reported is made.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { decodeFilterId } from '../../src/router/filter-id.js';
import { mineWithEmits } from '../support/client-fixture.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { rpc, rpcAnswer } from '../support/node-rpc.js';
import { scrapeSum } from '../support/prom-text.js';
import { waitUntil } from '../support/stream-recorder.js';

const hex = (n: number): string => `0x${n.toString(16)}`;

interface Log {
  blockNumber: string;
  logIndex: string;
}

interface Setup {
  devnet: LockstepDevnet;
  evmux: TestGateway;
  /** the index of the session's node, held a block behind; the other is at the head */
  held: number;
  /** the head: the block the held node lacks */
  n: number;
}

async function heads(evmux: TestGateway): Promise<string[]> {
  const status = JSON.parse((await evmux.get('/status')).body) as { upstreams: Array<{ usable: boolean; head: string }> };
  return status.upstreams.map((upstream) => (upstream.usable ? upstream.head : 'unusable'));
}

/** Blocks with logs on both nodes, then one (two logs) on the node that is not the session's only. */
async function sessionNodeBehind(t: TestContext): Promise<Setup> {
  const devnet = await LockstepDevnet.start({ nodes: 2, blockTimeMs: 0 });
  t.after(() => devnet.close());
  await mineWithEmits(devnet, 3);
  const evmux = await startGateway(
    devnet.nodes.map((node) => node.wsUrl),
    { health: { probeIntervalMs: 200 } },
  );
  t.after(() => evmux.close());
  await waitUntil('both nodes usable at the head', async () => (await heads(evmux)).every((head) => head === String(devnet.blockNumber)), 10_000);
  // A filter is made on the session's node, and its id names it.
  const probe = await rpc<string>(evmux.httpUrl, 'eth_newBlockFilter', []);
  const held = decodeFilterId(probe).upstreamIndex;
  await rpc(evmux.httpUrl, 'eth_uninstallFilter', [probe]);
  devnet.hold(held);
  await mineWithEmits(devnet, 1, 2);
  const n = devnet.blockNumber;
  const expected = held === 0 ? [String(n - 1), String(n)] : [String(n), String(n - 1)];
  await waitUntil('the session node seen a block behind, still usable', async () => (await heads(evmux)).join() === expected.join(), 10_000);
  return { devnet, evmux, held, n };
}

function keys(logs: Log[]): string[] {
  return logs.map((log) => `${Number(log.blockNumber)}:${Number(log.logIndex)}`);
}

test('eth_getFilterLogs of a filter on a node a block behind has the logs of the blocks that node lacks', async (t) => {
  const { devnet, evmux, held, n } = await sessionNodeBehind(t);
  const lead = devnet.nodes[1 - held]!.httpUrl;
  const address = devnet.emitterAddress;
  const want = keys(await rpc<Log[]>(lead, 'eth_getLogs', [{ fromBlock: '0x1', toBlock: hex(n), address }]));
  assert.ok(want.some((key) => key.startsWith(`${n}:`)), 'block N has logs');
  for (const criteria of [{ fromBlock: '0x1', toBlock: hex(n), address }, { fromBlock: '0x1', address }]) {
    const id = await rpc<string>(evmux.httpUrl, 'eth_newFilter', [criteria]);
    assert.equal(decodeFilterId(id).upstreamIndex, held, 'made on the session node');
    assert.deepEqual(keys(await rpc<Log[]>(evmux.httpUrl, 'eth_getFilterLogs', [id])), want, JSON.stringify(criteria));
  }

  // Its node at the head again: asked as before, the same logs.
  const id = await rpc<string>(evmux.httpUrl, 'eth_newFilter', [{ fromBlock: '0x1', toBlock: hex(n), address }]);
  await devnet.release(held);
  await waitUntil('both nodes at the head', async () => (await heads(evmux)).every((head) => head === String(n)), 10_000);
  const asked = async (): Promise<number> => scrapeSum(evmux.httpUrl, 'evmux_requests_total', { method: 'eth_getFilterLogs', upstream: `node${held}` });
  const before = await asked();
  assert.deepEqual(keys(await rpc<Log[]>(evmux.httpUrl, 'eth_getFilterLogs', [id])), want);
  assert.equal((await asked()) - before, 1, "asked of the filter's node");
});

test('a logs filter from the head evmux reported is made though the session node lacks that block', async (t) => {
  const { devnet, evmux, held, n } = await sessionNodeBehind(t);
  const lead = devnet.nodes[1 - held]!.httpUrl;
  const address = devnet.emitterAddress;
  assert.equal(Number(await rpc<string>(evmux.httpUrl, 'eth_blockNumber', [])), n);
  // viem's createEventFilter({ fromBlock: head }): anvil on the session node refuses it.
  const made = await rpcAnswer(evmux.httpUrl, 'eth_newFilter', [{ fromBlock: hex(n), address }]);
  assert.equal(made.error, undefined, JSON.stringify(made.error));
  const id = made.result as string;
  assert.equal(decodeFilterId(id).upstreamIndex, 1 - held, 'made on the node that has the block');
  const ofN = keys(await rpc<Log[]>(lead, 'eth_getLogs', [{ fromBlock: hex(n), toBlock: hex(n), address }]));
  assert.deepEqual(keys(await rpc<Log[]>(evmux.httpUrl, 'eth_getFilterLogs', [id])), ofN);

  // A filter on the head's hash, which anvil takes on the session node: its logs all the same.
  const { hash } = await rpc<{ hash: string }>(lead, 'eth_getBlockByNumber', [hex(n), false]);
  const byHash = await rpc<string>(evmux.httpUrl, 'eth_newFilter', [{ blockHash: hash, address }]);
  assert.equal(decodeFilterId(byHash).upstreamIndex, held);
  assert.deepEqual(keys(await rpc<Log[]>(evmux.httpUrl, 'eth_getFilterLogs', [byHash])), ofN);

  await mineWithEmits(devnet, 1);
  const changes = keys(await rpc<Log[]>(evmux.httpUrl, 'eth_getFilterChanges', [id]));
  assert.ok(changes.some((key) => key.startsWith(`${n + 1}:`)), `the next block's log handed over: ${changes.join()}`);
});
