/**
 * Every node's sockets closing at once (a load balancer restarting, a network blip) while filter
 * calls are in flight: the sockets are back within milliseconds, and the filter calls are answered,
 * as plain calls are. Each node's close is read in a turn of its own, so a filter call tried again
 * on the next node met that one closing too; the calls failed with -32050, and an ethers v6
 * contract-event listener whose eth_newFilter was among them heard nothing more (ethers keeps the
 * failed filter for good). Fake nodes, since the blip must come while the calls wait; they keep
 * filters of their own (FakeNode has none).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ethers } from 'ethers';
import { FakeNode, FakeRpcError } from '../support/fake-node.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { rpcAnswer, type RpcAnswer } from '../support/node-rpc.js';
import { sleep, waitUntil } from '../support/stream-recorder.js';

const EMITTER = '0x00000000000000000000000000000000000000aa';

/** Node-side logs and block filters over the fake chain: each poll hands over the blocks since the last. */
function keepFilters(node: FakeNode): void {
  let made = 0;
  const filters = new Map<string, { next: bigint; kind: 'logs' | 'blocks' }>();
  const make = (kind: 'logs' | 'blocks') => (): string => {
    const id = `0x${(++made).toString(16)}`;
    filters.set(id, { next: node.head.number + 1n, kind });
    return id;
  };
  node.handle('eth_newFilter', make('logs'));
  node.handle('eth_newBlockFilter', make('blocks'));
  node.handle('eth_uninstallFilter', (params) => filters.delete(String(params[0])));
  node.handle('eth_getFilterChanges', (params) => {
    const filter = filters.get(String(params[0]));
    if (filter === undefined) throw new FakeRpcError(-32000, 'filter not found');
    const changes: unknown[] = [];
    for (let number = filter.next; number <= node.head.number; number++) {
      if (filter.kind === 'blocks') changes.push(node.header(number)!.hash);
      else changes.push(...node.logsAt(number));
    }
    filter.next = node.head.number + 1n;
    return changes;
  });
}

function call(evmux: TestGateway, method: string, params: unknown[] = []): Promise<RpcAnswer> {
  return rpcAnswer(evmux.httpUrl, method, params);
}

async function allUsable(evmux: TestGateway, count: number): Promise<boolean> {
  return (JSON.parse((await evmux.get('/readyz')).body) as { usableUpstreams: number }).usableUpstreams === count;
}

/** Every node's sockets dropped at once, with calls that take 400 ms in flight on them. */
function blip(nodes: FakeNode[]): void {
  for (const node of nodes) {
    node.latencyMs = 0;
    node.dropConnections();
  }
}

function mineLog(nodes: FakeNode[]): void {
  for (const node of nodes) node.addLog({ address: EMITTER });
  for (const node of nodes) node.advance(1);
}

test('filter calls in flight when every node closes at once are answered, and the filters hand over every block once', async (t) => {
  const nodes = await Promise.all([0, 1, 2].map(() => FakeNode.start({ seed: 'filter-blip' })));
  t.after(() => Promise.all(nodes.map((node) => node.close())));
  for (const node of nodes) keepFilters(node);
  const evmux = await startGateway(nodes.map((node) => node.url));
  t.after(() => evmux.close());
  await waitUntil('every node usable', () => allUsable(evmux, nodes.length), 5_000);
  const logsFilter = (await call(evmux, 'eth_newFilter', [{ address: EMITTER }])).result as string;
  const blockFilter = (await call(evmux, 'eth_newBlockFilter')).result as string;
  const since = nodes[0]!.head.number;

  for (const node of nodes) node.latencyMs = 400;
  const inFlight = {
    eth_newFilter: call(evmux, 'eth_newFilter', [{ address: EMITTER }]),
    eth_newBlockFilter: call(evmux, 'eth_newBlockFilter'),
    'eth_getFilterChanges of the logs filter': call(evmux, 'eth_getFilterChanges', [logsFilter]),
    'eth_getFilterChanges of the block filter': call(evmux, 'eth_getFilterChanges', [blockFilter]),
  };
  await sleep(150);
  blip(nodes);
  const failed: string[] = [];
  for (const [what, reply] of Object.entries(inFlight)) if ((await reply).error !== undefined) failed.push(`${what}: ${JSON.stringify((await reply).error)}`);
  assert.deepEqual(failed, [], 'every filter call in flight answered');

  // What each filter hands over from now on: every block's log and hash once, across the blip.
  const madeInFlight = (await inFlight.eth_newFilter).result as string;
  for (let i = 0; i < 3; i++) mineLog(nodes);
  const head = nodes[0]!.head.number;
  const logsSeen = [...((await inFlight['eth_getFilterChanges of the logs filter']).result as Array<{ blockNumber: string }>)];
  logsSeen.push(...((await call(evmux, 'eth_getFilterChanges', [logsFilter])).result as Array<{ blockNumber: string }>));
  const blocksSeen = [...((await inFlight['eth_getFilterChanges of the block filter']).result as string[])];
  blocksSeen.push(...((await call(evmux, 'eth_getFilterChanges', [blockFilter])).result as string[]));
  const mined = Array.from({ length: Number(head - since) }, (_, i) => since + 1n + BigInt(i));
  assert.deepEqual(
    logsSeen.map((log) => BigInt(log.blockNumber)),
    mined,
    'the logs filter handed over each block log once',
  );
  assert.deepEqual(blocksSeen, mined.map((number) => nodes[0]!.header(number)!.hash), 'the block filter handed over each block once');
  const fromInFlight = (await call(evmux, 'eth_getFilterChanges', [madeInFlight])).result as Array<{ blockNumber: string }>;
  assert.deepEqual(fromInFlight.map((log) => BigInt(log.blockNumber)), mined.slice(-3), 'the filter made during the blip has the logs mined after it');
});

test('an ethers v6 event listener whose eth_newFilter was in flight at a blip hears the logs after it', async (t) => {
  const nodes = await Promise.all([0, 1].map(() => FakeNode.start({ seed: 'filter-blip-ethers' })));
  t.after(() => Promise.all(nodes.map((node) => node.close())));
  for (const node of nodes) keepFilters(node);
  const evmux = await startGateway(nodes.map((node) => node.url));
  t.after(() => evmux.close());
  await waitUntil('every node usable', () => allUsable(evmux, nodes.length), 5_000);
  const network = ethers.Network.from(31337);
  const provider = new ethers.JsonRpcProvider(evmux.httpUrl, network, { staticNetwork: network, pollingInterval: 100 });
  t.after(() => provider.destroy());

  for (const node of nodes) node.latencyMs = 400;
  const filtersMade = (): number => nodes.reduce((sum, node) => sum + (node.stats.requests.get('eth_newFilter') ?? 0), 0);
  let heard = 0;
  await provider.on({ address: EMITTER }, () => heard++);
  await waitUntil('ethers sent eth_newFilter', () => Promise.resolve(filtersMade() > 0), 5_000, 5);
  await sleep(50);
  blip(nodes);
  await waitUntil('every node usable again', () => allUsable(evmux, nodes.length), 5_000);
  await sleep(300);
  for (let i = 0; i < 5; i++) {
    mineLog(nodes);
    await sleep(200);
  }
  await waitUntil(`the listener heard 5 logs (${heard} so far)`, () => Promise.resolve(heard >= 5), 3_000);
  assert.equal(heard, 5);
});

test('a poll made while every node is away waits for its own node, which keeps the filter', async (t) => {
  const nodes = await Promise.all([0, 1].map(() => FakeNode.start({ seed: 'filter-kept' })));
  t.after(() => Promise.all(nodes.map((node) => node.close())));
  for (const node of nodes) keepFilters(node);
  const made = (): number => nodes.reduce((sum, node) => sum + (node.stats.requests.get('eth_newFilter') ?? 0), 0);
  const evmux = await startGateway(nodes.map((node) => node.url));
  t.after(() => evmux.close());
  await waitUntil('every node usable', () => allUsable(evmux, nodes.length), 5_000);
  const filter = (await call(evmux, 'eth_newFilter', [{ address: EMITTER }])).result as string;
  for (const node of nodes) node.acceptConnections = false;
  blip(nodes);
  await waitUntil('no node usable', async () => (JSON.parse((await evmux.get('/readyz')).body) as { usableUpstreams: number }).usableUpstreams === 0, 5_000, 5);
  const poll = call(evmux, 'eth_getFilterChanges', [filter]);
  await sleep(100);
  mineLog(nodes);
  for (const node of nodes) node.acceptConnections = true;
  const logs = (await poll).result as Array<{ blockNumber: string }>;
  assert.ok(Array.isArray(logs), JSON.stringify(logs));
  const more = (await call(evmux, 'eth_getFilterChanges', [filter])).result as Array<{ blockNumber: string }>;
  assert.deepEqual([...logs, ...more].map((log) => BigInt(log.blockNumber)), [nodes[0]!.head.number], 'the block mined meanwhile, once');
  assert.equal(made(), 1, 'not made again: its node still had it');
});
