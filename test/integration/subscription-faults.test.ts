/**
 * Subscription faults that anvil cannot be made to show, on three fake nodes of one chain (same
 * seed, every block and reorg applied to all): a node whose head stream stalls with its socket
 * open, one that stops answering pings, one that repeats and reorders heads, a reorg with logs,
 * every node down at once, the replay bound, a slow consumer, and the ring hold-down on return.
 * Every scenario ends with the stream guarantees checked against the fake chain.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { FakeNode, FakeRpcError } from '../support/fake-node.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { sumSamples } from '../support/prom-text.js';
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
  type LogNote,
} from '../support/stream-recorder.js';

const EMITTER = '0x00000000000000000000000000000000000000ee';
const BLOCK_MS = 150;

type Overrides = Parameters<typeof startGateway>[1];

interface Rig {
  chain: FakeNode[];
  evmux: TestGateway;
  /** heads: the newHeads subscription id; greeting: the chain head while it was made (nothing mines) */
  clients: Array<{ client: StreamClient; heads: string; logs: string; greeting: GreetingWindow }>;
  /** height when every client was subscribed: logs of later blocks must all arrive */
  logsFrom: bigint;
  /** mine on every node every BLOCK_MS, one emitter log per block */
  run(): void;
  stop(): void;
  /** one block with `logs` emitter logs on every node */
  mine(logs?: number, data?: `0x${string}`): void;
  node(name: string): FakeNode;
  /** the upstream every client's newHeads subscription is on, once they all are on one */
  pinned(accept?: (name: string) => boolean, timeoutMs?: number): Promise<string>;
  /** wait for every client to reach the chain head, then check every guarantee */
  verify(): Promise<void>;
}

async function rig(t: TestContext, overrides: Overrides = {}, clientCount = 2): Promise<Rig> {
  const seed = `faults-${t.name}`;
  const chain = await Promise.all([0, 1, 2].map(() => FakeNode.start({ seed, startHeight: 100 })));
  t.after(async () => {
    for (const node of chain) await node.close();
  });
  const evmux = await startGateway(chain.map((node) => node.url), overrides, { logLevel: 'info' });
  t.after(() => evmux.close());
  await waitUntil('three usable upstreams', async () => JSON.parse((await evmux.get('/readyz')).body).usableUpstreams === 3, 10_000);
  const clients: Rig['clients'] = [];
  for (let i = 0; i < clientCount; i++) {
    const client = await StreamClient.open(evmux.wsUrl, `client${i}`);
    t.after(() => client.close());
    const low = chain[0]!.head.number;
    const heads = await client.subscribe(['newHeads']);
    const logs = await client.subscribe(['logs', { address: EMITTER }]);
    // Greeted before anything is mined: the tests' own blocks all come after the greeting.
    await client.first(heads);
    clients.push({ client, heads, logs, greeting: { low, high: chain[0]!.head.number } });
  }
  const logsFrom = chain[0]!.head.number + 1n;
  let ticker: NodeJS.Timeout | undefined;
  const mine = (logs = 1, data: `0x${string}` = '0x01'): void => {
    for (const node of chain) for (let i = 0; i < logs; i++) node.addLog({ address: EMITTER, data });
    for (const node of chain) node.advance(1);
  };
  const stop = (): void => {
    clearInterval(ticker);
    ticker = undefined;
  };
  t.after(stop);
  return {
    chain,
    evmux,
    clients,
    logsFrom,
    mine,
    run: () => {
      ticker ??= setInterval(() => mine(), BLOCK_MS);
    },
    stop,
    node: (name) => chain[Number(name.replace('node', ''))]!,
    pinned: async (accept = () => true, timeoutMs = 10_000) => {
      let found: string | undefined;
      await waitUntil('every client pinned to one upstream', async () => {
        const byUpstream = subscriptionsByUpstream((await evmux.get('/status')).body);
        found = [...byUpstream].find(([name, kinds]) => kinds.get('newHeads') === clients.length && kinds.get('logs') === clients.length && accept(name))?.[0];
        return found !== undefined;
      }, timeoutMs, 25);
      return found!;
    },
    verify: async () => {
      stop();
      const height = chain[0]!.head.number;
      await waitUntil('every client reached the head', () => clients.every(({ client, heads }) => client.tip(heads) >= height), 10_000);
      await sleep(300);
      const canonical = new Map<bigint, string>();
      const canonicalLogs: LogNote[] = [];
      for (let n = 90n; n <= height; n++) {
        canonical.set(n, chain[0]!.header(n)!.hash);
        canonicalLogs.push(...chain[0]!.logsAt(n).map((log) => toLog(log as unknown as Record<string, unknown>)));
      }
      const problems: string[] = [];
      for (const { client, heads, logs, greeting } of clients) {
        for (const p of headProblems(client.heads(heads), canonical, height, greeting)) problems.push(`${client.label} newHeads: ${p}`);
        for (const p of logProblems(client.logs(logs), canonicalLogs, new Set(canonical.values()), logsFrom, height)) problems.push(`${client.label} logs: ${p}`);
        if (client.foreign.length > 0) problems.push(`${client.label}: notifications under ids it never got`);
        if (client.closeCode !== undefined) problems.push(`${client.label}: closed with ${client.closeCode}`);
      }
      assert.deepEqual(problems, []);
    },
  };
}

/** Advance the chain by `blocks` of the rig's own ticker. */
async function blocks(r: Rig, count: number): Promise<void> {
  const target = r.chain[0]!.head.number + BigInt(count);
  await waitUntil(`${count} more blocks`, () => r.chain[0]!.head.number >= target, count * BLOCK_MS * 4 + 2000);
}

const metricSum = async (r: Rig, name: string, labels: Record<string, string> = {}): Promise<number> => sumSamples((await r.evmux.get('/metrics')).body, name, labels);

test('a node whose head stream stalls with its socket open: clients fail over without a gap, and return once heads flow', { timeout: 30_000 }, async (t) => {
  const r = await rig(t, { health: { stallMs: 800 }, subscriptions: { holdDownMs: 1000 } });
  r.run();
  await blocks(r, 3);
  const stalled = await r.pinned();
  r.node(stalled).emitHeads = false;
  // The pool still finds it fine (its probes see the chain move): the subscription layer must notice.
  const moved = await r.pinned((name) => name !== stalled);
  assert.ok(r.evmux.logs.some((line) => line['msg'] === 'newHeads stream silent while the chain moves: failing its subscriptions over' && line['upstream'] === stalled));
  const status = JSON.parse((await r.evmux.get('/status')).body) as { upstreams: Array<{ name: string; usable: boolean }> };
  assert.equal(status.upstreams.find((u) => u.name === stalled)?.usable, true, 'the pool never saw a problem');
  await blocks(r, 3);
  r.node(stalled).emitHeads = true;
  await r.pinned((name) => name === stalled);
  assert.notEqual(moved, stalled);
  await blocks(r, 3);
  await r.verify();
  assert.ok((await metricSum(r, 'evmux_failovers_total', { kind: 'newHeads' })) >= 2, 'moved away and back');
  assert.ok((await metricSum(r, 'evmux_replayed_notifications_total', { kind: 'newHeads' })) > 0, 'the heads the silent node kept back were replayed');
});

test('a failover while a new newHeads subscription waits for its greeting: the node it moved to greets it', { timeout: 30_000 }, async (t) => {
  const r = await rig(t, { requestTimeoutMs: 3000 }, 0);
  const client = await StreamClient.open(r.evmux.wsUrl, 'late');
  t.after(() => client.close());
  const logs = await client.subscribe(['logs', { address: EMITTER }]);
  let home: string | undefined;
  await waitUntil('the logs subscription placed', async () => {
    home = [...subscriptionsByUpstream((await r.evmux.get('/status')).body)].find(([, kinds]) => kinds.get('logs') === 1)?.[0];
    return home !== undefined;
  }, 5000);
  // A fresh newHeads topic there has no head yet and asks the node for it; the node answers
  // neither that nor its health probes, so the subscription fails over before it has started.
  const hang = (): Promise<never> => new Promise(() => {});
  r.node(home!).handle('eth_getBlockByNumber', hang);
  r.node(home!).handle('eth_blockNumber', hang);
  const current = r.chain[0]!.head;
  const heads = await client.subscribe(['newHeads']);
  r.clients.push({ client, heads, logs, greeting: { low: current.number, high: current.number } });
  await r.pinned((name) => name !== home);
  // Nothing is mined: the greeting (the current head) must come by itself, from the new node.
  const greeting = toHead((await client.first(heads, 8000)).result);
  assert.deepEqual([greeting.number, greeting.hash], [current.number, current.hash], 'greeted with the current head');
  r.mine();
  r.mine();
  await r.verify();
});

test('a node that stops answering pings: the heartbeat drops it and clients fail over without a gap', { timeout: 30_000 }, async (t) => {
  const r = await rig(t, { subscriptions: { holdDownMs: 10_000 } });
  r.run();
  await blocks(r, 2);
  const deaf = await r.pinned();
  const failoversBefore = await metricSum(r, 'evmux_failovers_total');
  r.node(deaf).answerPings = false;
  await r.pinned((name) => name !== deaf);
  assert.ok(r.evmux.logs.some((line) => line['upstream'] === deaf && String(line['reason']).startsWith('no pong')), 'the heartbeat terminated the socket');
  assert.ok((await metricSum(r, 'evmux_failovers_total')) > failoversBefore);
  await blocks(r, 4);
  await r.verify();
});

test('duplicate, stale and out-of-order heads from a node: each head once, in order', { timeout: 30_000 }, async (t) => {
  const r = await rig(t);
  r.mine();
  r.mine();
  const noisyName = await r.pinned();
  const noisy = r.node(noisyName);
  await waitUntil('clients at the head', () => r.clients.every(({ client, heads }) => client.tip(heads) === noisy.head.number), 5000);
  const failoversBefore = await metricSum(r, 'evmux_failovers_total');
  const head = noisy.head;
  noisy.notifyHead(head); // the same head again
  noisy.notifyHead(head);
  noisy.notifyHead(noisy.header(head.number - 1n)!); // an older one
  noisy.notifyHead(noisy.header(head.number - 10n)!); // a much older one
  // A stale head must not pull the node's tracked height back: that would look like lag (the
  // node would lose its clients) until a probe raised it again.
  await sleep(30);
  const status = JSON.parse((await r.evmux.get('/status')).body) as { upstreams: Array<{ name: string; head: string; usable: boolean }> };
  const tracked = status.upstreams.find((upstream) => upstream.name === noisyName);
  assert.equal(tracked?.head, head.number.toString(), 'tracked head of the noisy node');
  assert.equal(tracked?.usable, true);
  // Two blocks the node announces backwards: the later first.
  for (const node of r.chain) node.emitHeads = false;
  r.mine();
  r.mine();
  for (const node of r.chain) node.emitHeads = true;
  noisy.notifyHead(noisy.head);
  noisy.notifyHead(noisy.header(noisy.head.number - 1n)!);
  noisy.notifyHead(noisy.head);
  r.mine();
  await r.verify();
  for (const { client, heads } of r.clients) {
    const numbers = client.heads(heads).map((h) => h.number);
    assert.deepEqual(numbers, [...numbers].sort((a, b) => (a < b ? -1 : 1)), 'heads in ascending order');
  }
  assert.equal(await metricSum(r, 'evmux_failovers_total'), failoversBefore, 'the noise moved nobody');
});

test('a reorg: the new branch from the fork point, delivered logs of orphaned blocks removed first', { timeout: 30_000 }, async (t) => {
  const r = await rig(t);
  for (let i = 0; i < 4; i++) r.mine(2);
  const pinned = r.node(await r.pinned());
  await waitUntil('clients at the head', () => r.clients.every(({ client, heads }) => client.tip(heads) === pinned.head.number), 5000);
  const orphanedHashes: string[] = [pinned.head.hash, pinned.header(pinned.head.number - 1n)!.hash];
  const forkPoint = pinned.head.number - 2n;
  for (const node of r.chain) node.addLog({ address: EMITTER, data: '0x02' }, node.head.number + 1n);
  for (const node of r.chain) node.reorg(2);
  r.mine(1);
  for (const node of r.chain) node.reorg(1);
  r.mine(1);
  await r.verify();
  for (const { client, heads, logs } of r.clients) {
    const delivered = client.heads(heads);
    const firstNew = delivered.findIndex((h) => h.parentHash === pinned.header(forkPoint)!.hash && !orphanedHashes.includes(h.hash));
    assert.ok(firstNew > 0, 'the new branch starts at the fork point');
    const all = client.logs(logs);
    const removed = all.filter((log) => log.removed);
    assert.equal(removed.filter((log) => orphanedHashes.includes(log.blockHash)).length, 4, 'the two logs of each orphaned block come back removed');
    const lastRemoval = all.map((log) => log.removed && orphanedHashes.includes(log.blockHash)).lastIndexOf(true);
    const firstNewBranchLog = all.findIndex((log) => !log.removed && log.blockNumber > forkPoint && !orphanedHashes.includes(log.blockHash));
    assert.ok(lastRemoval < firstNewBranchLog, 'removals go out before the new branch logs');
  }
});

test('a node that retracts a log whose block its heads keep canonical: the log stays delivered, no removal goes out', { timeout: 30_000 }, async (t) => {
  const r = await rig(t);
  for (let i = 0; i < 3; i++) r.mine(1);
  const pinned = r.node(await r.pinned());
  await waitUntil('clients at the head', () => r.clients.every(({ client, heads }) => client.tip(heads) === pinned.head.number), 5000);
  const retracted = pinned.logsAt(pinned.head.number)[0]!;
  pinned.notify('logs', { ...retracted, removed: true });
  for (let i = 0; i < 2; i++) r.mine(1);
  await r.verify();
  for (const { client, logs } of r.clients) {
    assert.deepEqual(client.logs(logs).filter((log) => log.removed), [], `${client.label}: no removal for a block still on the chain`);
  }
});

test('a failover whose log replay fails is retried until it works: logs are late, never lost', { timeout: 30_000 }, async (t) => {
  const r = await rig(t);
  r.mine();
  r.mine();
  const gone = await r.pinned();
  await waitUntil('clients at the head', () => r.clients.every(({ client, logs }) => client.logs(logs).length === 2), 5000);
  for (const node of r.chain) {
    if (node !== r.node(gone)) node.handle('eth_getLogs', () => { throw new FakeRpcError(-32000, 'logs temporarily unavailable'); });
  }
  // Three blocks the pinned node never announces, then it goes away: they must be replayed.
  r.node(gone).emitHeads = false;
  for (let i = 0; i < 3; i++) r.mine();
  r.node(gone).acceptConnections = false;
  r.node(gone).dropConnections();
  await r.pinned((name) => name !== gone);
  const height = r.chain[0]!.head.number;
  await waitUntil('heads replayed', () => r.clients.every(({ client, heads }) => client.tip(heads) === height), 5000);
  await sleep(1500);
  for (const { client, logs } of r.clients) assert.equal(client.logs(logs).length, 2, 'no log of the replayed blocks yet');
  // Every failed try is counted; the log gets one line per upstream and message in 10 s.
  const failures = await metricSum(r, 'evmux_stream_step_failures_total', { kind: 'logs' });
  const lines = r.evmux.logs.filter((line) => line['kind'] === 'logs' && /failed/.test(String(line['msg']))).map((line) => `${String(line['upstream'])}: ${String(line['msg'])}`);
  assert.ok(failures >= 2 && lines.length < failures, `${failures} failures counted, ${lines.length} logged`);
  assert.equal(new Set(lines).size, lines.length, lines.join('\n'));
  for (const node of r.chain) node.unhandle('eth_getLogs');
  r.mine();
  await r.verify();
});

/** A client with one logs subscription (EMITTER's), the name of the node holding it, and a way to ask again. */
async function oneLogsClient(t: TestContext, evmux: TestGateway): Promise<{ client: StreamClient; logs: string; holder: () => Promise<string | undefined>; pinned: string }> {
  const client = await StreamClient.open(evmux.wsUrl, 'client');
  t.after(() => client.close());
  const logs = await client.subscribe(['logs', { address: EMITTER }]);
  const holder = async (): Promise<string | undefined> => [...subscriptionsByUpstream((await evmux.get('/status')).body)].find(([, kinds]) => kinds.get('logs') === 1)?.[0];
  let pinned: string | undefined;
  await waitUntil('the logs subscription on a node', async () => (pinned = await holder()) !== undefined, 5000);
  return { client, logs, holder, pinned: pinned! };
}

test('a failover right after a logs subscription starts: the logs of the block it started at stay unsent', { timeout: 30_000 }, async (t) => {
  const chain = await Promise.all([0, 1, 2].map(() => FakeNode.start({ seed: `faults-${t.name}`, startHeight: 100 })));
  t.after(async () => {
    for (const node of chain) await node.close();
  });
  const mine = (): void => {
    for (const node of chain) node.addLog({ address: EMITTER, data: '0x01' });
    for (const node of chain) node.advance(1);
  };
  // The head when the client subscribes, 101, has a log of its filter: it was logged before.
  mine();
  const evmux = await startGateway(chain.map((node) => node.url));
  t.after(() => evmux.close());
  await waitUntil('three usable upstreams', async () => JSON.parse((await evmux.get('/readyz')).body).usableUpstreams === 3, 10_000);
  const { client, logs, holder, pinned } = await oneLogsClient(t, evmux);
  await sleep(200);
  // Its node goes before the next block. The next node looks again at the last blocks the stream
  // delivered, in case their logs were in flight: 101, the one it started at, is among them.
  const gone = chain[Number(pinned.replace('node', ''))]!;
  gone.acceptConnections = false;
  gone.dropConnections();
  await waitUntil('the logs subscription moved', async () => ![undefined, pinned].includes(await holder()), 5000);
  await sleep(300);
  mine();
  await waitUntil('the log of block 102', () => client.logs(logs).length > 0, 5000);
  await sleep(300);
  assert.deepEqual(client.logs(logs).map((log) => log.blockNumber), [102n], 'only the logs of blocks after the one it started at');
});

/**
 * A logs stream starts at its node's head. The node refuses the request for it (`failures` times),
 * two blocks with logs reach the other nodes only, and the node goes before the stream saw a head:
 * the next node must replay both blocks from the stream's start, 100. `headsSent`: a client follows
 * newHeads, so evmux has had block 100 from each node's head stream before the logs subscribe.
 */
async function anchorAfterRefusals(t: TestContext, failures: number, headsSent: boolean): Promise<bigint[]> {
  const chain = await Promise.all([0, 1, 2].map(() => FakeNode.start({ seed: `faults-${t.name}`, startHeight: 99 })));
  t.after(async () => {
    for (const node of chain) await node.close();
  });
  const evmux = await startGateway(chain.map((node) => node.url));
  t.after(() => evmux.close());
  await waitUntil('three usable upstreams', async () => JSON.parse((await evmux.get('/readyz')).body).usableUpstreams === 3, 10_000);
  if (headsSent) {
    const watcher = await StreamClient.open(evmux.wsUrl, 'watcher');
    t.after(() => watcher.close());
    const heads = await watcher.subscribe(['newHeads']);
    await sleep(300);
    for (const node of chain) node.advance(1);
    await waitUntil('block 100 sent', () => watcher.tip(heads) === 100n, 5000);
  } else {
    for (const node of chain) node.advance(1);
  }
  for (const node of chain) {
    let refused = 0;
    node.handle('eth_getBlockByNumber', () => {
      if (++refused >= failures) node.unhandle('eth_getBlockByNumber');
      throw new FakeRpcError(-32005, 'request queue full');
    });
  }
  const { client, logs, holder, pinned } = await oneLogsClient(t, evmux);
  await sleep(1000);
  const gone = chain[Number(pinned.replace('node', ''))]!;
  const others = chain.filter((node) => node !== gone);
  for (const node of chain) node.unhandle('eth_getBlockByNumber');
  for (const data of ['0x01', '0x02'] as const) {
    for (const node of others) node.addLog({ address: EMITTER, data });
    for (const node of others) node.advance(1);
  }
  gone.acceptConnections = false;
  gone.dropConnections();
  await waitUntil('the logs subscription moved', async () => ![undefined, pinned].includes(await holder()), 5000);
  await sleep(300);
  for (const node of others) node.addLog({ address: EMITTER, data: '0x03' });
  for (const node of others) node.advance(1);
  await waitUntil('the log of block 103', () => client.logs(logs).some((log) => log.blockNumber === 103n), 5000);
  await sleep(300);
  return client.logs(logs).map((log) => log.blockNumber);
}

test('a logs stream whose anchor request is refused once asks again: a failover before its first head replays every block after its start', { timeout: 30_000 }, async (t) => {
  assert.deepEqual(await anchorAfterRefusals(t, 1, false), [101n, 102n, 103n]);
});

test('a logs stream whose anchor request is refused every time starts at the last head its node sent: a failover still replays what came after', { timeout: 30_000 }, async (t) => {
  assert.deepEqual(await anchorAfterRefusals(t, 1000, true), [101n, 102n, 103n]);
});

test('every upstream down: subscriptions stay open and resume with replay when the nodes return', { timeout: 30_000 }, async (t) => {
  const r = await rig(t, { subscriptions: { holdDownMs: 500 } });
  r.mine();
  await r.pinned();
  const replayedBefore = await metricSum(r, 'evmux_replayed_notifications_total', { kind: 'newHeads' });
  for (const node of r.chain) {
    node.acceptConnections = false;
    node.dropConnections();
  }
  await waitUntil('no usable upstream', async () => (await r.evmux.get('/readyz')).status === 503, 5000);
  for (let i = 0; i < 5; i++) r.mine();
  await sleep(500);
  assert.equal(await r.evmux.metric('evmux_client_subscriptions', { kind: 'newHeads' }), r.clients.length, 'client subscriptions held through the outage');
  for (const node of r.chain) node.acceptConnections = true;
  await r.verify();
  assert.ok((await metricSum(r, 'evmux_replayed_notifications_total', { kind: 'newHeads' })) >= replayedBefore + 5, 'the five missed heads were replayed');
});

test('past the replay bound the stream jumps to the head, counts it and logs a warning', { timeout: 30_000 }, async (t) => {
  const r = await rig(t, { subscriptions: { replayMaxBlocks: 3, holdDownMs: 500 } });
  r.mine();
  await r.pinned();
  await waitUntil('clients at the head', () => r.clients.every(({ client, heads }) => client.tip(heads) === r.chain[0]!.head.number), 5000);
  const before = r.chain[0]!.head.number;
  for (const node of r.chain) {
    node.acceptConnections = false;
    node.dropConnections();
  }
  await waitUntil('no usable upstream', async () => (await r.evmux.get('/readyz')).status === 503, 5000);
  for (let i = 0; i < 8; i++) r.mine();
  for (const node of r.chain) node.acceptConnections = true;
  const head = r.chain[0]!.head.number;
  await waitUntil('clients jumped to the head', () => r.clients.every(({ client, heads }) => client.tip(heads) >= head), 10_000);
  for (const { client, heads } of r.clients) {
    const numbers = client.heads(heads).map((h) => h.number);
    assert.deepEqual(numbers.slice(numbers.indexOf(before), numbers.indexOf(before) + 2), [before, head], 'straight from the last head before the gap to the head');
  }
  assert.ok((await metricSum(r, 'evmux_replay_truncations_total', { kind: 'newHeads' })) >= 1, 'newHeads truncation counted');
  assert.ok((await metricSum(r, 'evmux_replay_truncations_total', { kind: 'logs' })) >= 1, 'logs truncation counted');
  assert.ok(r.evmux.logs.some((line) => line['level'] === 40 && String(line['msg']).startsWith('replay bound hit')), 'warning logged');
  // And the stream goes on normally from there.
  r.mine();
  r.mine();
  await waitUntil('heads after the jump', () => r.clients.every(({ client, heads }) => client.tip(heads) === head + 2n), 5000);
});

test('a slow consumer is disconnected with 1013 and counted while the others keep receiving', { timeout: 30_000 }, async (t) => {
  // The cap is well above one block's burst, which a client that reads absorbs between blocks (the
  // clients share this process with evmux, so nothing is read while evmux publishes).
  const r = await rig(t, { limits: { maxSendBufferBytes: 1024 * 1024 } }, 2);
  r.mine();
  await r.pinned();
  const [slow, fast] = r.clients;
  (slow!.client.ws as unknown as { _socket: Socket })._socket.pause();
  const big = `0x${'ab'.repeat(32 * 1024)}` as const;
  let mined = 0;
  await waitUntil('the slow client is cut off', async () => {
    r.mine(4, big);
    mined++;
    await sleep(50);
    return (await metricSum(r, 'evmux_client_disconnects_total', { reason: 'slow_consumer' })) >= 1;
  }, 20_000, 0);
  assert.equal(await metricSum(r, 'evmux_client_disconnects_total', { reason: 'slow_consumer' }), 1, 'exactly one client was too slow');
  (slow!.client.ws as unknown as { _socket: Socket })._socket.resume();
  await waitUntil('the slow client sees the close', () => slow!.client.closeCode !== undefined, 5000);
  assert.equal(slow!.client.closeCode, 1013);
  r.clients.splice(0, 1);
  r.mine();
  await r.verify();
  assert.ok(fast!.client.logs(fast!.logs).length >= mined * 4, 'the fast client got every big log');
});

test('ring hold-down: clients return to their node only after it has been back for holdDownMs, without a gap', { timeout: 30_000 }, async (t) => {
  const holdDownMs = 2000;
  const r = await rig(t, { subscriptions: { holdDownMs } });
  r.run();
  await blocks(r, 2);
  const home = await r.pinned();
  r.node(home).acceptConnections = false;
  r.node(home).dropConnections();
  await r.pinned((name) => name !== home);
  await blocks(r, 3);
  r.node(home).acceptConnections = true;
  let usableSince: number | undefined;
  await waitUntil('the node is usable again', async () => {
    const status = JSON.parse((await r.evmux.get('/status')).body) as { upstreams: Array<{ name: string; usableSince: number | null }> };
    usableSince = status.upstreams.find((u) => u.name === home)?.usableSince ?? undefined;
    return usableSince !== undefined;
  }, 10_000);
  await r.pinned((name) => name === home, holdDownMs + 5000);
  const returnedAfter = Date.now() - usableSince!;
  assert.ok(returnedAfter >= holdDownMs, `returned ${returnedAfter} ms after the node was usable again, hold-down is ${holdDownMs} ms`);
  await blocks(r, 3);
  await r.verify();
});
