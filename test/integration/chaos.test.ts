/**
 * Chaos on a 3-node lockstep anvil devnet with short blocks behind evmux, while raw ws clients and
 * real clients (viem, ethers v6, web3.js v4) listen to newHeads and the emitter's logs: kill -9 the
 * node the clients are pinned to, restart it, kill the node they moved to, restart it, let them
 * return after hold-down, reorg every node, mine on. Then every client's stream is compared with
 * the canonical chain read from a node: no height missing, no hash twice, parent links hold, every
 * canonical log once, logs of orphaned blocks removed, subscription ids unchanged.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { WebSocketProvider as EthersProvider, type Log as EthersLog } from 'ethers';
import { createPublicClient, webSocket } from 'viem';
import { anvil } from 'viem/chains';
import { Web3, WebSocketProvider as Web3Provider } from 'web3';
import { EMITTER_EVENT_ABI } from '../../src/devnet/emitter-contract.js';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { sumSamples } from '../support/prom-text.js';
import { SocketTap, type TappableSocket } from '../support/client-fixture.js';
import { canonicalHashes as readCanonicalHashes, rpc } from '../support/node-rpc.js';
import {
  headProblems,
  logProblems,
  sleep,
  StreamClient,
  subscriptionsByUpstream,
  toHead,
  toLog,
  waitUntil,
  type GreetingWindow,
  type HeadNote,
  type LogNote,
} from '../support/stream-recorder.js';

const RAW_CLIENTS = 3;
/** raw clients + viem + ethers + web3, each with one newHeads (ethers: 'block') subscription */
const HEAD_SUBSCRIBERS = RAW_CLIENTS + 3;

let devnet: LockstepDevnet;
let evmux: TestGateway;
const cleanups: Array<() => Promise<void> | void> = [];

before(async () => {
  devnet = await LockstepDevnet.start({ nodes: 3, blockTimeMs: 300, traffic: true });
  evmux = await startGateway(devnet.nodes.map((node) => node.wsUrl), { health: { maxLagBlocks: 5 } });
});

after(async () => {
  for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => {});
  await evmux?.close();
  await devnet?.close();
});

/** Which upstream holds how many newHeads client subscriptions. */
async function headHolders(): Promise<Map<string, number>> {
  const byUpstream = subscriptionsByUpstream((await evmux.get('/status')).body);
  return new Map([...byUpstream].map(([name, kinds]) => [name, kinds.get('newHeads') ?? 0]));
}

/** Resolves with the one upstream holding every newHeads subscriber (optionally not `other`). */
async function waitPinned(what: string, accept: (name: string) => boolean, timeoutMs = 10_000): Promise<string> {
  let pinned: string | undefined;
  await waitUntil(what, async () => {
    const holders = await headHolders();
    pinned = [...holders].find(([name, count]) => count === HEAD_SUBSCRIBERS && accept(name))?.[0];
    return pinned !== undefined;
  }, timeoutMs, 50);
  return pinned!;
}

const nodeIndex = (name: string): number => Number(name.replace('node', ''));

/** Lowest and highest head of the running nodes: they mine in lockstep but not in the same instant. */
async function nodeHeads(): Promise<GreetingWindow> {
  const heads = await Promise.all(devnet.nodes.filter((node) => node.running).map(async (node) => BigInt(await rpc<string>(node.httpUrl, 'eth_blockNumber', []))));
  return { low: heads.reduce((a, b) => (a < b ? a : b)), high: heads.reduce((a, b) => (a > b ? a : b)) };
}

interface RealClients {
  viemBlocks: Array<{ number: bigint; hash: string } | undefined>;
  viemLogs: LogNote[];
  ethersBlocks: number[];
  ethersLogs: LogNote[];
  web3Heads: HeadNote[];
  /** every newHeads frame evmux sent on web3's socket, whether or not web3 reported it */
  web3Wire: () => HeadNote[];
  /**
   * newHeads frames that reached web3's socket before the test could listen: web3 drops those that
   * arrive before it knows the subscription id, and reports the others before 'data' has a listener
   */
  web3Unheard: number;
  web3Logs: LogNote[];
}

function logNote(log: { blockNumber: unknown; blockHash: unknown; logIndex?: unknown; index?: unknown; removed?: unknown; transactionHash: unknown }): LogNote {
  return {
    blockNumber: BigInt(log.blockNumber as bigint | number | string),
    blockHash: String(log.blockHash).toLowerCase(),
    logIndex: Number(log.logIndex ?? log.index),
    removed: log.removed === true,
    transactionHash: String(log.transactionHash),
  };
}

async function startRealClients(): Promise<RealClients> {
  const seen: RealClients = { viemBlocks: [], viemLogs: [], ethersBlocks: [], ethersLogs: [], web3Heads: [], web3Wire: () => [], web3Unheard: 0, web3Logs: [] };
  const address = devnet.emitterAddress;

  const viem = createPublicClient({ chain: anvil, cacheTime: 0, transport: webSocket(evmux.wsUrl) });
  const unwatchBlocks = viem.watchBlocks({ poll: false, onBlock: (block) => seen.viemBlocks.push(block === undefined ? undefined : { number: block.number, hash: block.hash }) });
  const unwatchEvent = viem.watchEvent({ poll: false, address, event: EMITTER_EVENT_ABI[0], onLogs: (logs) => seen.viemLogs.push(...logs.map(logNote)) });
  cleanups.push(async () => {
    unwatchBlocks();
    unwatchEvent();
    (await viem.transport.getRpcClient()).close();
  });

  const ethers = new EthersProvider(evmux.wsUrl, 31337, { staticNetwork: true });
  cleanups.push(() => ethers.destroy());
  await ethers.on('block', (number: number) => {
    seen.ethersBlocks.push(number);
  });
  await ethers.on({ address, topics: [devnet.emitterTopic] }, (log: EthersLog) => {
    seen.ethersLogs.push(logNote(log));
  });

  const provider = new Web3Provider(evmux.wsUrl, {}, { autoReconnect: false });
  const tap = new SocketTap(provider.SocketConnection as TappableSocket);
  const web3 = new Web3(provider);
  cleanups.push(() => provider.disconnect());
  const heads = await web3.eth.subscribe('newBlockHeaders');
  seen.web3Wire = () => tap.notifications(heads.id).map((result) => toHead(result as Record<string, unknown>));
  seen.web3Unheard = tap.notifications(heads.id).length;
  heads.on('data', (head) => {
    seen.web3Heads.push({ number: BigInt(head.number ?? -1), hash: String(head.hash), parentHash: String(head.parentHash) });
  });
  const logs = await web3.eth.subscribe('logs', { address, topics: [devnet.emitterTopic] });
  logs.on('data', (log) => {
    seen.web3Logs.push(logNote(log as Parameters<typeof logNote>[0]));
  });
  return seen;
}

test('kill -9, restart, second kill, return after hold-down and a reorg: every stream stays gapless and exact', { timeout: 60_000 }, async () => {
  await waitUntil('three usable upstreams', async () => JSON.parse((await evmux.get('/readyz')).body).usableUpstreams === 3, 15_000);
  // Each newHeads subscription is greeted with the head current while it starts: between the
  // nodes' heads read right before the subscribe and right after the greeting arrived.
  const raw: Array<{ client: StreamClient; heads: string; logs: string; greeting: GreetingWindow }> = [];
  for (let i = 0; i < RAW_CLIENTS; i++) {
    const client = await StreamClient.open(evmux.wsUrl, `raw${i}`);
    cleanups.push(() => client.close());
    const { low } = await nodeHeads();
    const heads = await client.subscribe(['newHeads']);
    const logs = await client.subscribe(['logs', { address: devnet.emitterAddress }]);
    await client.first(heads);
    raw.push({ client, heads, logs, greeting: { low, high: (await nodeHeads()).high } });
  }
  const { low: realLow } = await nodeHeads();
  const real = await startRealClients();
  await waitUntil('real clients greeted', () => real.viemBlocks.length > 0 && real.ethersBlocks.length > 0 && real.web3Wire().length > 0, 5000);
  const realGreeting: GreetingWindow = { low: realLow, high: (await nodeHeads()).high };
  const greetedWith = (first: bigint | undefined): string[] =>
    first !== undefined && first >= realGreeting.low && first <= realGreeting.high ? [] : [`first block ${first} is not the head at subscribe time (${realGreeting.low}..${realGreeting.high})`];
  // Logs of blocks after this one must all arrive: every subscription is live before it is mined.
  const logsFrom = BigInt(devnet.blockNumber) + 1n;
  const rawTip = (): bigint => raw.reduce((low, r) => (r.client.tip(r.heads) < low ? r.client.tip(r.heads) : low), BigInt(Number.MAX_SAFE_INTEGER));
  const advanced = async (what: string, blocks: number): Promise<void> => {
    const from = rawTip();
    await waitUntil(what, () => rawTip() >= from + BigInt(blocks), 10_000);
  };
  await advanced('clients receive heads', 2);

  // 1. the pinned node falls behind (still within maxLagBlocks, so still in use), then is killed
  // with -9: the clients fail over and get the blocks it never had replayed from another node.
  const first = await waitPinned('every client pinned to one upstream', () => true);
  devnet.hold(nodeIndex(first));
  const heldAt = devnet.blockNumber;
  await waitUntil('the others mine on', () => devnet.blockNumber >= heldAt + 3, 10_000);
  await devnet.kill(nodeIndex(first));
  const second = await waitPinned('clients moved off the killed node', (name) => name !== first);
  await advanced('heads flow after the first failover', 3);

  // 2. restart it, and while it is in hold-down kill the node the clients moved to.
  await devnet.restart(nodeIndex(first));
  await devnet.release(nodeIndex(first));
  await devnet.kill(nodeIndex(second));
  await waitPinned('clients moved off the second killed node', (name) => name !== second);
  await advanced('heads flow after the second failover', 3);
  await devnet.restart(nodeIndex(second));

  // 3. the ring owner is back for longer than hold-down: the clients return to it.
  await waitPinned('clients back on their ring owner', (name) => name === first, 15_000);
  await advanced('heads flow after the return', 2);

  // 4. reorg every node, mine on.
  const reorgAt = BigInt(devnet.blockNumber);
  await devnet.reorg(3);
  await advanced('heads flow after the reorg', 4);

  const end = BigInt(devnet.blockNumber);
  await waitUntil('every client reached the end height', () =>
    rawTip() >= end &&
    real.web3Heads.some((h) => h.number >= end) &&
    real.ethersBlocks.some((n) => n >= Number(end)) &&
    real.viemBlocks.some((b) => b !== undefined && b.number >= end), 10_000);
  await sleep(1000);

  // The canonical chain from a node, for every height any client saw.
  const firstHeight = raw.reduce((low, r) => (r.client.heads(r.heads)[0]!.number < low ? r.client.heads(r.heads)[0]!.number : low), end);
  const canonical = await readCanonicalHashes(devnet.nodes[0]!.httpUrl, firstHeight, end);
  const canonicalHashes = new Set(canonical.values());
  const logsTo = end - 1n;
  const canonicalLogs = (await rpc<Array<Record<string, unknown>>>(devnet.nodes[0]!.httpUrl, 'eth_getLogs', [
    { address: devnet.emitterAddress, fromBlock: `0x${logsFrom.toString(16)}`, toBlock: `0x${logsTo.toString(16)}` },
  ])).map((log) => logNote(log as Parameters<typeof logNote>[0]));
  assert.ok(canonicalLogs.length > 10, 'the emitter logged in most blocks');

  const problems: string[] = [];
  const report = (who: string, list: string[]): void => {
    for (const problem of list) problems.push(`${who}: ${problem}`);
  };
  let removals = 0;
  for (const { client, heads, logs, greeting } of raw) {
    report(`${client.label} newHeads`, headProblems(client.heads(heads), canonical, end, greeting));
    report(`${client.label} logs`, logProblems(client.logs(logs), canonicalLogs, canonicalHashes, logsFrom, logsTo));
    if (client.foreign.length > 0) problems.push(`${client.label}: notifications under unknown ids ${[...new Set(client.foreign)].join(', ')}`);
    removals += client.logs(logs).filter((log) => log.removed).length;
  }
  // One topic, one history: every raw client got the very same frames from the last greeting on
  // (a block mined while they subscribed one after the other greets the later ones with it), the
  // greetings are the bytes the others got for that head, and the same log frames from logsFrom.
  const lastGreeting = raw.map(({ client, heads }) => client.notifications(heads)[0]!).reduce((a, b) => (toHead(b.result).number > toHead(a.result).number ? b : a));
  const frames = raw.map(({ client, heads, logs }) => {
    const headFrames = client.notifications(heads).map((n) => n.raw);
    const from = headFrames.indexOf(lastGreeting.raw);
    assert.ok(from >= 0, `${client.label} got the frame that greeted the last subscriber, with the same bytes`);
    const logFrames = client.notifications(logs).filter((n) => toLog(n.result).blockNumber >= logsFrom).map((n) => n.raw);
    return [...headFrames.slice(from), ...logFrames];
  });
  for (const [i, list] of frames.entries()) assert.deepEqual(list, frames[0], `raw${i} received other bytes than raw0`);

  // Real clients: what each can observe. evmux sent web3 the greeting (checked on the wire), but
  // web3.js drops notifications that arrive in the same read as the subscribe reply (see
  // clients-web3.test.ts), and the test listens only once the subscription is returned: what it
  // reports starts with the greeting or a head that arrived before the test listened, or the first
  // after those (a block mined while web3 subscribed can come in that same read).
  report('web3 newHeads frames', headProblems(real.web3Wire(), canonical, end, realGreeting));
  report('web3 newBlockHeaders', headProblems(real.web3Heads, canonical, end, 'unchecked'));
  const web3First = real.web3Heads[0]?.hash;
  const web3Expected = real.web3Wire().slice(0, real.web3Unheard + 1);
  if (!web3Expected.some((head) => head.hash === web3First)) {
    problems.push(`web3: first reported head ${web3First} is none of the ${web3Expected.length} heads on the wire up to the first one sent after the test listened`);
  }
  report('web3 logs', logProblems(real.web3Logs, canonicalLogs, canonicalHashes, logsFrom, logsTo));
  // ethers hands removed:true logs to per-log orphan listeners, not to the filter's listener.
  report('ethers logs', logProblems(real.ethersLogs, canonicalLogs, canonicalHashes, logsFrom, logsTo, { removalsSeen: false }));
  report('viem logs', logProblems(real.viemLogs, canonicalLogs, canonicalHashes, logsFrom, logsTo));
  const ethersFirst = real.ethersBlocks[0] ?? Number(end);
  report('ethers', greetedWith(BigInt(ethersFirst)));
  for (let n = ethersFirst; n <= Number(end); n++) if (!real.ethersBlocks.includes(n)) problems.push(`ethers: block ${n} never emitted`);
  // ethers emits a number per newHeads notification: a number twice only where the reorg replaced blocks.
  const inReorg = (n: bigint): boolean => n >= reorgAt - 3n && n <= reorgAt + 2n;
  for (const n of new Set(real.ethersBlocks)) {
    if (real.ethersBlocks.filter((m) => m === n).length > 1 && !inReorg(BigInt(n))) problems.push(`ethers: block ${n} emitted twice outside the reorg`);
  }
  // viem fetches each announced block by number (evmux must send that read to a node that has the
  // block): it reports hashes, but of whatever is canonical when it asks.
  if (real.viemBlocks.includes(undefined)) problems.push(`viem: ${real.viemBlocks.filter((b) => b === undefined).length} blocks could not be fetched`);
  const viemBlocks = real.viemBlocks.filter((b) => b !== undefined);
  // onBlock runs in the order viem's getBlock replies arrive: the greeting is the lowest block.
  const viemFirst = viemBlocks.reduce((low, b) => (b.number < low ? b.number : low), end);
  report('viem', greetedWith(viemFirst));
  const viemGreeting = viemBlocks.find((b) => b.number === viemFirst);
  if (viemGreeting?.hash !== canonical.get(viemFirst)) problems.push(`viem: first block ${viemFirst} ${viemGreeting?.hash} is not canonical`);
  for (let n = viemFirst; n <= end; n++) if (!viemBlocks.some((b) => b.number === n)) problems.push(`viem: block ${n} never reported`);
  const viemHashes = new Map<string, number>();
  for (const block of viemBlocks) viemHashes.set(block.hash, (viemHashes.get(block.hash) ?? 0) + 1);
  for (const block of viemBlocks) {
    if ((viemHashes.get(block.hash) ?? 0) > 1 && !inReorg(block.number)) problems.push(`viem: block ${block.number} ${block.hash} reported twice outside the reorg`);
  }
  assert.deepEqual([...new Set(problems)], []);
  assert.ok(removals > 0, 'the reorg removed delivered logs (removed: true)');

  const metrics = (await evmux.get('/metrics')).body;
  assert.ok(sumSamples(metrics, 'evmux_failovers_total') > 0, 'failovers counted');
  assert.ok(sumSamples(metrics, 'evmux_replayed_notifications_total', { kind: 'newHeads' }) >= 3, 'the heads the held node missed were replayed');
  assert.ok(sumSamples(metrics, 'evmux_replayed_notifications_total', { kind: 'logs' }) >= 3, 'and their logs');
});

