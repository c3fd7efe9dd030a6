/**
 * Filter failover with real clients over HTTP: the node holding a client's filter is killed (or
 * restarts and forgets it), and the client, still polling the same filter id, gets every log or
 * block hash exactly once, in order, with no gap; a pending-transaction filter is made again and
 * reports what is sent after that. ethers' FilterIdEventSubscriber and viem's
 * watchContractEvent never create their filter again on their own, so without failover they go
 * silent. Expected results come from a node that stayed up, asked directly.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Contract, JsonRpcProvider, type ContractEventPayload } from 'ethers';
import { createPublicClient, http, type Hex } from 'viem';
import { anvil } from 'viem/chains';
import { EMITTER_EVENT_ABI } from '../../src/devnet/emitter-contract.js';
import type { DevnetNode } from '../../src/devnet/lockstep-devnet.js';
import { assertLogSequence, logKey, startClientFixture, waitFor, type ClientFixture, type LogKey } from '../support/client-fixture.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { canonicalHashes, rpcAnswer } from '../support/node-rpc.js';
import { decodeFilterId } from '../../src/router/filter-id.js';

/** How long a client may take to catch up after its filter's node went away. */
const DELIVERY_TIMEOUT_MS = 8000;

let fx: ClientFixture;

// A fresh devnet per test (well under a second to start): each test kills or restarts a node.
beforeEach(async () => {
  fx = await startClientFixture();
  await fx.mineWithEmits(2, 2);
});

afterEach(async () => {
  await fx?.close();
});

async function rpcResult<T>(url: string, method: string, params: unknown[]): Promise<T> {
  const answer = await rpcAnswer(url, method, params);
  assert.ok(answer.error === undefined, `${method} answered ${JSON.stringify(answer.error)}`);
  return answer.result as T;
}

/** A logs filter on the emitter made through evmux, and a poll that adds what it hands over to `received`. */
async function pollableLogsFilter(): Promise<{ filterId: string; holder: number; startHead: bigint; received: LogKey[]; poll: () => Promise<void> }> {
  const filterId = await rpcResult<string>(fx.evmux.httpUrl, 'eth_newFilter', [emitterFilter()]);
  const received: LogKey[] = [];
  const poll = async (): Promise<void> => {
    received.push(...(await rpcResult<Array<Parameters<typeof logKey>[0]>>(fx.evmux.httpUrl, 'eth_getFilterChanges', [filterId])).map(logKey));
  };
  return { filterId, holder: holderOf(filterId), startHead: BigInt(fx.devnet.blockNumber), received, poll };
}

/** Until `gateway` no longer counts node `index` usable. */
async function untilUnusable(gateway: TestGateway, index: number, why: string): Promise<void> {
  await waitFor(async () => {
    const status = JSON.parse((await gateway.get('/status')).body) as { upstreams: Array<{ name: string; usable: boolean }> };
    return status.upstreams.find((upstream) => upstream.name === `node${index}`)?.usable === false;
  }, `node${index} ${why}`);
}

/** Which upstream evmux put a filter on, as the id it returned names it. */
function holderOf(filterId: string): number {
  return decodeFilterId(filterId).upstreamIndex;
}

/** A node other than `index`, to ask for what the chain holds while `index` is down. */
function survivorOf(index: number): DevnetNode {
  const node = fx.devnet.nodes.find((candidate) => candidate.index !== index);
  assert.ok(node !== undefined);
  return node;
}

function toQuantity(value: bigint): Hex {
  return `0x${value.toString(16)}`;
}

function emitterFilter(): { address: Hex; topics: Hex[] } {
  return { address: fx.devnet.emitterAddress, topics: [fx.devnet.emitterTopic] };
}

async function emitterLogsOn(node: DevnetNode, fromBlock: bigint, toBlock: bigint): Promise<LogKey[]> {
  const filter = { ...emitterFilter(), fromBlock: toQuantity(fromBlock), toBlock: toQuantity(toBlock) };
  return (await rpcResult<Array<Parameters<typeof logKey>[0]>>(node.httpUrl, 'eth_getLogs', [filter])).map(logKey);
}

async function blockHashesOn(node: DevnetNode, fromBlock: bigint, toBlock: bigint): Promise<Hex[]> {
  const hashes: Hex[] = [];
  for (let number = fromBlock; number <= toBlock; number++) {
    hashes.push((await rpcResult<{ hash: Hex }>(node.httpUrl, 'eth_getBlockByNumber', [toQuantity(number), false])).hash);
  }
  return hashes;
}

async function usable(name: string): Promise<boolean> {
  const status = JSON.parse((await fx.evmux.get('/status')).body) as { upstreams: Array<{ name: string; usable: boolean }> };
  return status.upstreams.find((upstream) => upstream.name === name)?.usable === true;
}

interface Exchange {
  method: string;
  params: unknown;
  result?: unknown;
  error?: unknown;
}

/** The JSON-RPC calls a client library made and what evmux answered, paired by request id. */
class RpcTraffic {
  readonly #pending = new Map<string, Exchange>();
  readonly #answered: Exchange[] = [];

  sent(payload: unknown): void {
    for (const frame of frames(payload)) {
      if (typeof frame.method === 'string') this.#pending.set(JSON.stringify(frame.id), { method: frame.method, params: frame.params });
    }
  }

  received(payload: unknown): void {
    for (const frame of frames(payload)) {
      const key = JSON.stringify(frame.id);
      const exchange = this.#pending.get(key);
      if (exchange === undefined) continue;
      this.#pending.delete(key);
      this.#answered.push(frame.error === undefined ? { ...exchange, result: frame.result } : { ...exchange, error: frame.error });
    }
  }

  /** Answered calls of `method`, in the order the answers came. */
  of(method: string): Exchange[] {
    return this.#answered.filter((exchange) => exchange.method === method);
  }

  /** The filter id evmux gave the client's first successful `creator` call. */
  filterId(creator: string): string | undefined {
    const created = this.of(creator).find((exchange) => typeof exchange.result === 'string');
    return created?.result as string | undefined;
  }

  /** For failure messages: how polling went, with the first and last errors evmux answered. */
  summary(): unknown {
    const polls = this.of('eth_getFilterChanges');
    const errors = polls.filter((exchange) => exchange.error !== undefined).map((exchange) => exchange.error);
    return { created: this.of('eth_newFilter').length, polls: polls.length, errors: errors.length, firstError: errors[0], lastError: errors.at(-1) };
  }
}

function frames(payload: unknown): Array<{ id?: unknown; method?: unknown; params?: unknown; result?: unknown; error?: unknown }> {
  const list: unknown[] = Array.isArray(payload) ? payload : [payload];
  return list.filter((item): item is Record<string, unknown> => item !== null && typeof item === 'object');
}

/** While a client catches up, a block is mined this often: ethers polls its filter only on new blocks. */
const NUDGE_MS = 500;

/**
 * The shared plot of the client tests: wait for the client's filter, mine, check delivery, kill
 * the node holding the filter, mine more, then expect every Ping from the filter's creation on,
 * once each, in order.
 */
async function expectEveryLogAcrossKill(who: string, traffic: RpcTraffic, received: readonly LogKey[]): Promise<string> {
  await waitFor(() => traffic.filterId('eth_newFilter') !== undefined, `${who}: its eth_newFilter answered`, { state: () => traffic.summary() });
  const filterId = traffic.filterId('eth_newFilter')!;
  const holder = holderOf(filterId);
  const startHead = BigInt(fx.devnet.blockNumber);
  const survivor = survivorOf(holder);

  /**
   * Wait until the client has the emitter logs of every block up to the head now, then check them
   * against the chain. ethers polls its filter once per new block it sees and skips blocks that
   * come while a poll is in flight, so, as on a live chain, blocks keep coming meanwhile; the logs
   * of those may still be on their way.
   */
  const expectCaughtUp = async (what: string): Promise<void> => {
    const expected = await emitterLogsOn(survivor, startHead + 1n, BigInt(fx.devnet.blockNumber));
    let minedAt = Date.now();
    const caughtUp = async (): Promise<boolean> => {
      if (received.length >= expected.length) return true;
      if (Date.now() - minedAt >= NUDGE_MS) {
        await fx.devnet.mine(1);
        minedAt = Date.now();
      }
      return false;
    };
    const state = async () => ({
      filterId,
      holder: `node${holder}`,
      startHead,
      head: fx.devnet.blockNumber,
      received: received.length,
      expected: expected.length,
      missing: expected.filter((key) => !received.includes(key)).length,
      traffic: traffic.summary(),
      evmux: await fx.diagnostics(),
    });
    await waitFor(caughtUp, `${who}: ${what}`, { timeoutMs: DELIVERY_TIMEOUT_MS, state });
    await sleep(300); // anything delivered twice would show up now
    const chain = await emitterLogsOn(survivor, startHead + 1n, BigInt(fx.devnet.blockNumber));
    assertLogSequence(received, chain.slice(0, Math.max(received.length, expected.length)), `${who} (filter ${filterId} on node${holder}): ${what}`);
  };

  await fx.mineWithEmits(3, 2);
  await expectCaughtUp('the logs mined before the kill');
  await fx.devnet.kill(holder);
  await fx.mineWithEmits(3, 2);
  await expectCaughtUp(`every log after node${holder}, holding the filter, was killed`);
  return filterId;
}

test("ethers JsonRpcProvider contract.on('Ping'): every log once, in order, after the node holding its filter is killed", async () => {
  // cacheTimeout -1: no answers from ethers' cache; batchMaxCount 1: one call per request.
  const provider = new JsonRpcProvider(fx.evmux.httpUrl, undefined, { cacheTimeout: -1, pollingInterval: 50, batchMaxCount: 1 });
  try {
    const traffic = new RpcTraffic();
    await provider.on('debug', (event: { action: string; payload?: unknown; result?: unknown }) => {
      if (event.action === 'sendRpcPayload') traffic.sent(event.payload);
      else if (event.action === 'receiveRpcResult') traffic.received(event.result);
    });
    const received: LogKey[] = [];
    const emitter = new Contract(fx.devnet.emitterAddress, EMITTER_EVENT_ABI, provider);
    await emitter.on('Ping', (_from: string, _value: bigint, event: ContractEventPayload) => void received.push(logKey(event.log)));
    await expectEveryLogAcrossKill('ethers', traffic, received);
  } finally {
    provider.destroy();
  }
});

test('raw eth_newBlockFilter polling: every block hash once, in order, after the holding node restarts without the filter', async () => {
  const filterId = await rpcResult<string>(fx.evmux.httpUrl, 'eth_newBlockFilter', []);
  const holder = holderOf(filterId);
  const holderNode = fx.devnet.nodes[holder];
  assert.ok(holderNode !== undefined, `filter id ${filterId} names node${holder}`);
  const startHead = BigInt(fx.devnet.blockNumber);
  const hashes: Hex[] = [];
  const errors: unknown[] = [];
  const poll = async (): Promise<void> => {
    const answer = await rpcAnswer(fx.evmux.httpUrl, 'eth_getFilterChanges', [filterId]);
    if (answer.error !== undefined) errors.push(answer.error);
    else hashes.push(...(answer.result as Hex[]));
  };

  await fx.mineWithEmits(2);
  await poll();
  await fx.mineWithEmits(1); // mined before the restart, never polled on the old filter
  await fx.devnet.restart(holder);
  const onNode = await rpcAnswer(holderNode.httpUrl, 'eth_getFilterChanges', [`0x${filterId.slice(4)}`]);
  assert.ok(onNode.error !== undefined, `premise: restarted node${holder} forgot the filter, but answered ${JSON.stringify(onNode)}`);
  await waitFor(() => usable(`node${holder}`), `evmux using node${holder} again after its restart`, { timeoutMs: DELIVERY_TIMEOUT_MS });
  // Polled at once, while the node is usable: polled only after the next blocks, it could be a
  // block behind at that moment (more so on a loaded machine), and the filter moved off it as
  // lagging, not made again there for being lost.
  await poll();
  await fx.mineWithEmits(2);

  const endHead = BigInt(fx.devnet.blockNumber);
  const expected = await blockHashesOn(fx.direct, startHead + 1n, endHead);
  await waitFor(
    async () => {
      await poll();
      return hashes.length >= expected.length;
    },
    `every block hash through filter ${filterId} after node${holder} restarted`,
    {
      timeoutMs: DELIVERY_TIMEOUT_MS,
      state: async () => ({ startHead, endHead, hashes, expected, errors: errors.length, firstError: errors[0], evmux: await fx.diagnostics() }),
    },
  );
  await sleep(100);
  await poll(); // nothing may come twice
  assert.deepEqual(hashes, expected, `filter ${filterId}: every block hash after creation exactly once, in order`);
  assert.deepEqual(errors, [], `filter ${filterId}: no poll failed`);
  // The node was back and answered "filter not found": the filter was made again, not passed over as down.
  assert.equal(await fx.evmux.metric('evmux_filter_moves_total', { kind: 'blocks', reason: 'filter_lost' }), 1);
});

test('viem watchContractEvent (http, poll): every log once, in order, after the node holding its filter is killed', async () => {
  const traffic = new RpcTraffic();
  let stopping = false;
  const recordingFetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const request = JSON.parse(String(init?.body)) as { id?: unknown; method?: unknown };
    traffic.sent(request);
    const response = await fetch(input, init);
    const answer = (await response.clone().json()) as { error?: unknown };
    traffic.received(answer);
    // viem polls on until its eth_uninstallFilter succeeds; a failed one (the filter's node is gone)
    // would leave it polling after the test and keep the process alive.
    if (stopping && request.method === 'eth_uninstallFilter' && answer.error !== undefined) {
      return Response.json({ jsonrpc: '2.0', id: request.id, result: false });
    }
    return response;
  };
  const client = createPublicClient({ chain: anvil, cacheTime: 0, pollingInterval: 50, transport: http(fx.evmux.httpUrl, { fetchFn: recordingFetch }) });
  const received: LogKey[] = [];
  const errors: Error[] = [];
  const unwatch = client.watchContractEvent({
    address: fx.devnet.emitterAddress,
    abi: EMITTER_EVENT_ABI,
    eventName: 'Ping',
    poll: true,
    pollingInterval: 50,
    onLogs: (logs) => void received.push(...logs.map(logKey)),
    onError: (error) => void errors.push(error),
  });
  try {
    const filterId = await expectEveryLogAcrossKill('viem', traffic, received);
    assert.equal(traffic.of('eth_getLogs').length, 0, 'viem watched through its filter, never falling back to eth_getLogs');
    assert.equal(traffic.of('eth_newFilter').length, 1, `viem created one filter: ${JSON.stringify(traffic.summary())}`);
    const polled = new Set(traffic.of('eth_getFilterChanges').map((exchange) => JSON.stringify(exchange.params)));
    assert.deepEqual([...polled], [JSON.stringify([filterId])], 'every poll used the one filter id');
    assert.deepEqual(errors.map(String), [], 'viem saw no error');
  } finally {
    stopping = true;
    unwatch();
    // viem stops polling once its eth_uninstallFilter is answered: wait for that before evmux closes.
    // Not an assertion: a failure here must not hide the test's own.
    if (traffic.filterId('eth_newFilter') !== undefined) {
      await waitFor(() => traffic.of('eth_uninstallFilter').length > 0, 'viem uninstalling its filter').catch(() => undefined);
    }
  }
});

test('eth_uninstallFilter of a filter whose node restarted without it answers true, as for a node that is down', async () => {
  const filterId = await rpcResult<string>(fx.evmux.httpUrl, 'eth_newBlockFilter', []);
  const holder = holderOf(filterId);
  await fx.devnet.restart(holder);
  await waitFor(() => usable(`node${holder}`), `evmux using node${holder} again after its restart`, { timeoutMs: DELIVERY_TIMEOUT_MS });
  // The node answers false for an id it does not have; evmux remembered the filter.
  assert.deepEqual(await rpcAnswer(fx.evmux.httpUrl, 'eth_uninstallFilter', [filterId]), { result: true });
  assert.deepEqual(await rpcAnswer(fx.evmux.httpUrl, 'eth_uninstallFilter', [filterId]), { result: false }, 'once more: there is no such filter any more');
});

test('after a move eth_getFilterLogs answers as before; eth_uninstallFilter of a filter on a killed node answers true', async () => {
  const criteria = { ...emitterFilter(), fromBlock: toQuantity(BigInt(fx.devnet.blockNumber) - 1n) };
  const moved = await rpcResult<string>(fx.evmux.httpUrl, 'eth_newFilter', [criteria]);
  const idle = await rpcResult<string>(fx.evmux.httpUrl, 'eth_newBlockFilter', []);
  const holder = holderOf(moved);
  assert.equal(holderOf(idle), holder, `both filters on the session's node: ${moved}, ${idle}`);

  await fx.devnet.kill(holder);
  await fx.mineWithEmits(2, 2);
  const changes = await rpcAnswer(fx.evmux.httpUrl, 'eth_getFilterChanges', [moved]);
  assert.equal(changes.error, undefined, `eth_getFilterChanges(${moved}) after node${holder} was killed: ${JSON.stringify(changes.error)}`);
  const filterLogs = await rpcAnswer(fx.evmux.httpUrl, 'eth_getFilterLogs', [moved]);
  const direct = await rpcResult<unknown[]>(survivorOf(holder).httpUrl, 'eth_getLogs', [criteria]);
  assert.ok(direct.length > 0, 'the filter matches some logs');
  assert.deepEqual(filterLogs, { result: direct }, `eth_getFilterLogs(${moved}) after the move equals eth_getLogs with its criteria`);

  for (const [what, filterId] of [
    ['a filter on the killed node', idle],
    ['the moved filter', moved],
  ] as const) {
    const uninstalled = await rpcAnswer(fx.evmux.httpUrl, 'eth_uninstallFilter', [filterId]);
    assert.deepEqual(uninstalled, { result: true }, `eth_uninstallFilter of ${what} (${filterId})`);
    const polled = await rpcAnswer(fx.evmux.httpUrl, 'eth_getFilterChanges', [filterId]);
    assert.ok(polled.error !== undefined, `polling ${what} (${filterId}) after eth_uninstallFilter: ${JSON.stringify(polled)}`);
  }
  // Once more, with its node still down: there is no such filter any more, as a node would say.
  assert.deepEqual(await rpcAnswer(fx.evmux.httpUrl, 'eth_uninstallFilter', [idle]), { result: false }, 'a second eth_uninstallFilter of the filter on the killed node');
});

test('a pending-transaction filter whose node is killed is made again: transactions sent after that are reported', async () => {
  const filterId = await rpcResult<string>(fx.evmux.httpUrl, 'eth_newPendingTransactionFilter', []);
  const holder = holderOf(filterId);
  await fx.devnet.kill(holder);
  // The first poll after the kill makes the filter again; pending transactions are not replayed.
  assert.deepEqual(await rpcAnswer(fx.evmux.httpUrl, 'eth_getFilterChanges', [filterId]), { result: [] });

  const startHead = BigInt(fx.devnet.blockNumber);
  await fx.mineWithEmits(2, 2);
  const survivor = survivorOf(holder);
  const mined: Hex[] = [];
  for (let number = startHead + 1n; number <= BigInt(fx.devnet.blockNumber); number++) {
    mined.push(...(await rpcResult<{ transactions: Hex[] }>(survivor.httpUrl, 'eth_getBlockByNumber', [toQuantity(number), false])).transactions);
  }
  assert.ok(mined.length > 0, 'the test mined transactions');
  const reported = await rpcResult<Hex[]>(fx.evmux.httpUrl, 'eth_getFilterChanges', [filterId]);
  const lower = new Set(reported.map((hash) => hash.toLowerCase()));
  assert.deepEqual(
    mined.filter((hash) => !lower.has(hash.toLowerCase())),
    [],
    `filter ${filterId}, moved off node${holder}: every transaction mined after the move reported (${reported.length} reported)`,
  );
  assert.equal(await fx.evmux.metric('evmux_filter_moves_total', { kind: 'pending', reason: 'node_down' }), 1);
});

test('a reorg while the node holding a logs filter is down: the new branch is handed over, its blocks below the last poll included', async () => {
  const { filterId, holder, startHead, received, poll } = await pollableLogsFilter();
  await fx.mineWithEmits(3, 2);
  const polledHead = fx.devnet.blockNumber;
  // The poll covers through the head evmux knows of the node: let that be the last block.
  await waitFor(async () => {
    const status = JSON.parse((await fx.evmux.get('/status')).body) as { upstreams: Array<{ name: string; head: string | null }> };
    return status.upstreams.find((upstream) => upstream.name === `node${holder}`)?.head === String(polledHead);
  }, `evmux knows node${holder} is at ${polledHead}`);
  await poll();
  const orphaned = await emitterLogsOn(fx.direct, BigInt(polledHead) - 1n, BigInt(polledHead));

  await fx.devnet.kill(holder);
  // The last two blocks the filter handed over are replaced by a branch of three.
  await fx.devnet.reorg(2);
  await fx.mineWithEmits(1, 2);
  await poll();

  const survivor = survivorOf(holder);
  const expected = await emitterLogsOn(survivor, startHead + 1n, BigInt(fx.devnet.blockNumber));
  const branch = await emitterLogsOn(survivor, BigInt(polledHead) - 1n, BigInt(polledHead));
  assert.ok(branch.length > 0 && branch.every((key) => !orphaned.includes(key)), 'the reorg replaced blocks with logs by blocks with other logs');
  // Handed over before the kill, and not canonical now: anvil reports no removed logs to replay.
  const live = received.filter((key) => !orphaned.includes(key));
  assert.deepEqual(live, expected, `filter ${filterId}: every log of the chain after its start once, in order, the new branch's included`);
});

test("logs filters bounded as nodes read them ('0X' hex, 'earliest', 'Latest') hand over after their node is killed what the node's own filters do", async () => {
  const head = BigInt(fx.devnet.blockNumber);
  const upper = (n: bigint): string => `0X${n.toString(16).toUpperCase()}`;
  const bounds: Record<string, { fromBlock?: string; toBlock?: string }> = {
    'toBlock at the head, 0X': { toBlock: upper(head) },
    'the head and the next block, 0X': { fromBlock: upper(head), toBlock: upper(head + 1n) },
    'toBlock earliest': { toBlock: 'earliest' },
    'toBlock Latest': { toBlock: 'Latest' },
  };
  const criteria = Object.values(bounds).map((bound) => ({ ...emitterFilter(), ...bound }));
  const filters = await Promise.all(criteria.map((filter) => rpcResult<string>(fx.evmux.httpUrl, 'eth_newFilter', [filter])));
  const holder = holderOf(filters[0]!);
  assert.deepEqual(filters.map(holderOf), filters.map(() => holder), `every filter on the session's node: ${filters.join(', ')}`);
  // The same filters on a node that stays up, made before any block more: what the client should get.
  const survivor = survivorOf(holder);
  const own = await Promise.all(criteria.map((filter) => rpcResult<string>(survivor.httpUrl, 'eth_newFilter', [filter])));
  const changes = (url: string, ids: string[]): Promise<LogKey[][]> =>
    Promise.all(ids.map(async (id) => (await rpcResult<Array<Parameters<typeof logKey>[0]>>(url, 'eth_getFilterChanges', [id])).map(logKey)));
  // A first poll each: logs of blocks before a filter was made (a past fromBlock) are not replayed
  // to a filter never polled before its node died (README), and are not what this test is about.
  assert.deepEqual(await changes(fx.evmux.httpUrl, filters), await changes(survivor.httpUrl, own), 'the first polls');

  await fx.devnet.kill(holder);
  await fx.mineWithEmits(4, 2);
  const byName = (lists: LogKey[][]): Record<string, LogKey[]> => Object.fromEntries(Object.keys(bounds).map((name, i) => [name, lists[i]!]));
  const expected = byName(await changes(survivor.httpUrl, own));
  assert.ok(expected['the head and the next block, 0X']!.length > 0 && expected['toBlock Latest']!.length > expected['the head and the next block, 0X']!.length, 'the bounds leave out some logs');
  assert.deepEqual(byName(await changes(fx.evmux.httpUrl, filters)), expected);
});

test('a logs filter on a node that falls behind moves to one that is not: the logs come as they are mined, once each', async () => {
  const { filterId, holder, startHead, received, poll } = await pollableLogsFilter();
  await fx.mineWithEmits(1, 2);
  await poll();
  // Held back, the node answers but gets no blocks: past health.maxLagBlocks (5) it is not usable.
  fx.devnet.hold(holder);
  await fx.mineWithEmits(8, 2);
  await untilUnusable(fx.evmux, holder, 'held back, no longer usable');
  await poll();

  const expected = await emitterLogsOn(fx.direct, startHead + 1n, BigInt(fx.devnet.blockNumber));
  assert.deepEqual(received, expected, `filter ${filterId}: every log up to the head now, once, in order, though node${holder} has none of the last blocks`);
  assert.equal(await fx.evmux.metric('evmux_filter_moves_total', { kind: 'logs', reason: 'node_unusable' }), 1);
  // The node filter left behind is gone: it would go on matching, and once evmux forgets the
  // filter, the client's id, which names it, would reach it.
  await waitFor(async () => (await rpcAnswer(fx.devnet.nodes[holder]!.httpUrl, 'eth_getFilterChanges', [`0x${filterId.slice(4)}`])).error !== undefined, `the node filter left on node${holder} uninstalled`);
  await fx.devnet.release(holder);
});

test('eth_getFilterLogs on a block filter gets the node\'s own answer, and the filter goes on handing over every hash', async () => {
  const filterId = await rpcResult<string>(fx.evmux.httpUrl, 'eth_newBlockFilter', []);
  const startHead = BigInt(fx.devnet.blockNumber);
  const direct = await rpcResult<string>(fx.direct.httpUrl, 'eth_newBlockFilter', []);
  await fx.mineWithEmits(3);
  const nodes = await rpcAnswer(fx.direct.httpUrl, 'eth_getFilterLogs', [direct]);
  assert.ok(nodes.error !== undefined, `premise: a node answers eth_getFilterLogs on a block filter with an error: ${JSON.stringify(nodes)}`);
  assert.deepEqual(await rpcAnswer(fx.evmux.httpUrl, 'eth_getFilterLogs', [filterId]), nodes);
  const hashes = await rpcResult<Hex[]>(fx.evmux.httpUrl, 'eth_getFilterChanges', [filterId]);
  assert.deepEqual(hashes, await blockHashesOn(fx.direct, startHead + 1n, BigInt(fx.devnet.blockNumber)));
  assert.equal(await fx.evmux.metric('evmux_filter_moves_total', { kind: 'blocks', reason: 'filter_lost' }), undefined, 'not taken for a lost filter');
});

test('eth_getFilterLogs first after the node holding a logs filter is killed: the next poll hands over what was missed', async () => {
  const { filterId, holder, startHead, received, poll } = await pollableLogsFilter();
  await fx.mineWithEmits(2, 2);
  await poll();
  await fx.devnet.kill(holder);
  await fx.mineWithEmits(3, 2);
  const filterLogs = await rpcAnswer(fx.evmux.httpUrl, 'eth_getFilterLogs', [filterId]);
  assert.equal(filterLogs.error, undefined, JSON.stringify(filterLogs.error));
  await fx.mineWithEmits(1, 2);
  await poll();
  const expected = await emitterLogsOn(survivorOf(holder), startHead + 1n, BigInt(fx.devnet.blockNumber));
  assert.deepEqual(received, expected, `filter ${filterId}: every log once, in order, across a move made by eth_getFilterLogs`);
});

test('a node holding 2,000 filters dies: each moves on its next poll, all polled at once, none refused for a full queue', async () => {
  const count = 2000;
  // A gateway of its own, whose per-address limit lets one client make them all.
  const gateway = await startGateway(fx.devnet.nodes.map((node) => node.wsUrl), { limits: { maxInstalledFiltersPerIp: count } }, { logLevel: 'warn' });
  try {
    // One session's filters, all on its node; each its own topic, so each its own node filter.
    const ids: string[] = [];
    for (let batch = 0; batch < count; batch += 200) {
      const made = await Promise.all(
        Array.from({ length: 200 }, (_, index) =>
          rpcResult<string>(gateway.httpUrl, 'eth_newFilter', [{ ...emitterFilter(), topics: [[fx.devnet.emitterTopic, toQuantity(BigInt(batch + index + 1)).padEnd(66, '0')]] }]),
        ),
      );
      ids.push(...made);
    }
    // The session's node. Under load a node can miss a probe while they are made, and some go to
    // the next node: those stay where they are.
    const held = [0, 1, 2].map((node) => ids.filter((id) => holderOf(id) === node).length);
    const moving = Math.max(...held);
    const holder = held.indexOf(moving);
    assert.ok(moving >= count / 2, `filters per node: ${JSON.stringify(held)}`);
    const startHead = BigInt(fx.devnet.blockNumber);
    // Polled as clients poll them, each once before the kill.
    await Promise.all(ids.map((id) => rpcResult(gateway.httpUrl, 'eth_getFilterChanges', [id])));
    await fx.devnet.kill(holder);
    await fx.mineWithEmits(2, 2);
    // Once evmux knows the node is gone, the session's next node takes every filter.
    await untilUnusable(gateway, holder, 'marked down');

    const answers = await Promise.all(ids.map((id) => rpcAnswer(gateway.httpUrl, 'eth_getFilterChanges', [id])));
    const refused = answers.filter((answer) => answer.error !== undefined);
    assert.deepEqual(refused.slice(0, 3), [], `${refused.length} of ${count} polls refused`);
    const expected = await emitterLogsOn(survivorOf(holder), startHead + 1n, BigInt(fx.devnet.blockNumber));
    assert.ok(answers.every((answer) => (answer.result as unknown[]).length === expected.length), 'each filter handed over every log mined since the kill');
    assert.equal(await gateway.metric('evmux_filter_moves_total', { kind: 'logs', reason: 'node_down' }), moving);
  } finally {
    await gateway.close();
  }
});

test('a block filter whose node dies while the only node left is behind the block it was made at: nothing from before it comes, nothing twice', async () => {
  // Which node this client's filters go to (its session's node), from a first filter.
  const holder = holderOf(await rpcResult<string>(fx.evmux.httpUrl, 'eth_newBlockFilter', []));
  const [behind, third] = [0, 1, 2].filter((index) => index !== holder) as [number, number];
  fx.devnet.hold(behind);
  await fx.mineWithEmits(2);
  const startHead = BigInt(fx.devnet.blockNumber);
  const filterId = await rpcResult<string>(fx.evmux.httpUrl, 'eth_newBlockFilter', []);
  assert.equal(holderOf(filterId), holder, 'made on the session\'s node, which is not held');
  const hashes: Hex[] = [];
  const poll = async (): Promise<void> => {
    hashes.push(...(await rpcResult<Hex[]>(fx.evmux.httpUrl, 'eth_getFilterChanges', [filterId])));
  };
  await poll();

  // The node left is two blocks behind the filter's start: it is the only node, so it is usable.
  await fx.devnet.kill(third);
  await fx.devnet.kill(holder);
  await untilUnusable(fx.evmux, holder, 'down');
  await poll();
  await fx.devnet.release(behind);
  await fx.mineWithEmits(2);
  const endHead = BigInt(fx.devnet.blockNumber);
  const expected = [...(await canonicalHashes(fx.devnet.nodes[behind]!.httpUrl, startHead + 1n, endHead)).values()];
  await waitFor(
    async () => {
      await poll();
      return hashes.length >= expected.length;
    },
    `the block hashes after filter ${filterId} was made, through node${behind}`,
    { timeoutMs: DELIVERY_TIMEOUT_MS, state: async () => ({ startHead, endHead, hashes, expected }) },
  );
  await sleep(100);
  await poll();
  assert.deepEqual(hashes, expected, 'every block hash after the filter was made, once, and none from before');
});

test('a block filter whose node dies while the only node left is further behind than the 256 hashes it remembers: nothing twice as that node catches up', async () => {
  const holder = holderOf(await rpcResult<string>(fx.evmux.httpUrl, 'eth_newBlockFilter', []));
  const [behind, third] = [0, 1, 2].filter((index) => index !== holder) as [number, number];
  const startHead = BigInt(fx.devnet.blockNumber);
  const filterId = await rpcResult<string>(fx.evmux.httpUrl, 'eth_newBlockFilter', []);
  assert.equal(holderOf(filterId), holder, 'made on the session\'s node');
  const hashes: Hex[] = [];
  const poll = async (): Promise<void> => {
    hashes.push(...(await rpcResult<Hex[]>(fx.evmux.httpUrl, 'eth_getFilterChanges', [filterId])));
  };
  // Held at the block the filter was made at (a node resyncing, say), while the filter hands over
  // 300 blocks: more than the last 256 hashes a block filter's cursor remembers.
  fx.devnet.hold(behind);
  await fx.devnet.kill(third);
  for (let mined = 0; mined < 300; mined += 50) {
    await fx.devnet.mine(50);
    await poll();
  }

  await fx.devnet.kill(holder);
  await waitFor(async () => (await usable(`node${behind}`)) && !(await usable(`node${holder}`)), `node${behind} the only usable node`);
  await poll();
  await fx.devnet.release(behind);
  await fx.devnet.mine(2);
  const endHead = BigInt(fx.devnet.blockNumber);
  const expected = [...(await canonicalHashes(fx.devnet.nodes[behind]!.httpUrl, startHead + 1n, endHead)).values()];
  await waitFor(
    async () => {
      await poll();
      return hashes.length >= expected.length;
    },
    `the block hashes after filter ${filterId} was made, through node${behind}`,
    { timeoutMs: DELIVERY_TIMEOUT_MS, state: async () => ({ startHead, endHead, received: hashes.length, expected: expected.length }) },
  );
  await sleep(100);
  await poll();
  assert.equal(new Set(hashes).size, hashes.length, 'no block hash twice');
  assert.deepEqual(hashes, expected, 'every block hash after the filter was made, once, in order');
});
