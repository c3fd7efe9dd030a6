/**
 * A node's answer over `limits.maxAnswerBytes` (a wide eth_getLogs on a busy chain can be hundreds of
 * MB) is skipped unread: the caller gets -32602 naming the limit, the call is not retried on every
 * node, the socket stays open and the calls that shared it are answered, and the streams go on
 * without a gap. Three fake nodes of one chain: anvil cannot be made to produce such an answer in a
 * test's time.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { FakeNode } from '../support/fake-node.js';
import { startGateway } from '../support/gateway.js';
import { headProblems, sleep, StreamClient, waitUntil } from '../support/stream-recorder.js';
import { Probe } from '../support/ws-probe.js';

const LIMIT = 512 * 1024;
const BLOCK_MS = 100;

const total = (nodes: FakeNode[], method: string): number => nodes.reduce((sum, node) => sum + (node.stats.requests.get(method) ?? 0), 0);

/**
 * `count` fake nodes of one chain answering eth_getLogs with a log of `logBytes` bytes of data after
 * `logsMs`, and eth_call with 0x01 after `callMs`; closed when the test ends.
 */
async function wideLogNodes(t: TestContext, count: number, seed: string, logBytes: number, logsMs: number, callMs: number): Promise<FakeNode[]> {
  const nodes = await Promise.all(Array.from({ length: count }, () => FakeNode.start({ seed, startHeight: 100 })));
  t.after(async () => {
    for (const node of nodes) await node.close();
  });
  for (const node of nodes) {
    node.handle('eth_getLogs', async () => {
      await sleep(logsMs);
      return [{ address: '0x00000000000000000000000000000000000000ee', data: `0x${'ab'.repeat(logBytes)}` }];
    });
    node.handle('eth_call', async () => {
      await sleep(callMs);
      return '0x01';
    });
  }
  return nodes;
}

test('an answer over maxAnswerBytes is refused to its caller after one node and skipped: the socket stays open, the calls beside it are answered there, and streams go on without a gap', { timeout: 30_000 }, async (t) => {
  // eth_call slower than the large answer, so that some are pending on its socket as it comes.
  const nodes = await wideLogNodes(t, 3, 'answer-limit', LIMIT, 100, 300);
  const evmux = await startGateway(nodes.map((node) => node.url), { limits: { maxAnswerBytes: LIMIT } });
  t.after(() => evmux.close());
  await waitUntil('three usable upstreams', async () => JSON.parse((await evmux.get('/readyz')).body).usableUpstreams === 3, 10_000);

  const listener = await StreamClient.open(evmux.wsUrl, 'listener');
  t.after(() => listener.close());
  const low = nodes[0]!.head.number;
  const heads = await listener.subscribe(['newHeads']);
  await listener.first(heads);
  const greeting = { low, high: nodes[0]!.head.number };
  const ticker = setInterval(() => {
    for (const node of nodes) node.advance(1);
  }, BLOCK_MS);
  t.after(() => clearInterval(ticker));

  const caller = await StreamClient.open(evmux.wsUrl, 'caller');
  t.after(() => caller.close());
  const calls = Array.from({ length: 12 }, () => caller.request('eth_call', [{ to: '0x00000000000000000000000000000000000000ee' }, 'latest']));
  const wide = await caller.request('eth_getLogs', [{ fromBlock: '0x0', toBlock: 'latest' }]);
  const error = wide['error'] as { code: number; message: string } | undefined;
  assert.equal(error?.code, -32602, `the caller is told it asked for too much: ${JSON.stringify(wide).slice(0, 300)}`);
  assert.match(error.message, /eth_getLogs: the node's answer is larger than this gateway's limit of 524288 bytes \(limits\.maxAnswerBytes\)/);
  assert.equal(total(nodes, 'eth_getLogs'), 1, 'asked of one node only: each node asked would close its socket on the answer');

  const answers = await Promise.all(calls);
  assert.deepEqual(answers.map((answer) => answer['result']), answers.map(() => '0x01'), 'the calls beside it are all answered');
  assert.equal(total(nodes, 'eth_call'), 12, 'none was tried again: none failed where it was sent');
  // Each node has a call socket and one for subscriptions; the caller's calls after it go on
  // sockets of their own (made for a client whose answer passed the limit). None closed.
  const sockets = (key: 'connections' | 'connectionsTotal'): number => nodes.reduce((sum, node) => sum + node.stats[key], 0);
  assert.equal(sockets('connectionsTotal'), sockets('connections'), 'no socket closed');
  assert.ok(sockets('connections') >= 6 && sockets('connections') <= 9, `at most one socket of its own per node: ${sockets('connections')} open`);
  assert.ok(evmux.logs.some((line) => line['msg'] === 'upstream answer over limits.maxAnswerBytes skipped' && line['method'] === 'eth_getLogs'), 'logged with the method');

  // The listener's stream, whichever node it was on, went on without a gap or a repeat.
  await sleep(5 * BLOCK_MS);
  clearInterval(ticker);
  const height = nodes[0]!.head.number;
  await waitUntil('the listener reached the head', () => listener.tip(heads) >= height, 5000);
  const canonical = new Map<bigint, string>();
  for (let n = low; n <= height; n++) canonical.set(n, nodes[0]!.header(n)!.hash);
  assert.deepEqual(headProblems(listener.heads(heads), canonical, height, greeting), []);
  assert.equal(listener.closeCode, undefined);
});

test('a batch is answered as one message, so its answer as a whole is held to maxAnswerBytes: the calls past it get -32005', async (t) => {
  const node = await FakeNode.start({ seed: 'answer-limit-batch' });
  t.after(() => node.close());
  const itemBytes = 300 * 1024;
  node.handle('eth_getLogs', () => [{ address: '0x00000000000000000000000000000000000000ee', data: `0x${'cd'.repeat(itemBytes / 2)}` }]);
  const limit = 1024 * 1024;
  const evmux = await startGateway([node.url], { limits: { maxAnswerBytes: limit } });
  t.after(() => evmux.close());
  const batch = (size: number): string =>
    JSON.stringify(Array.from({ length: size }, (_, id) => ({ jsonrpc: '2.0', id, method: 'eth_getLogs', params: [{ fromBlock: '0x0' }] })));
  const post = async (body: string): Promise<Array<Record<string, unknown>>> => {
    const response = await fetch(evmux.httpUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    return (await response.json()) as Array<Record<string, unknown>>;
  };

  const small = await post(batch(3));
  assert.deepEqual(small.map((item) => Array.isArray(item['result'])), [true, true, true], 'three answers fit in the limit');

  const large = await post(batch(8));
  assert.deepEqual(large.map((item) => item['id']), [0, 1, 2, 3, 4, 5, 6, 7], 'every call answered, in order');
  const answered = large.filter((item) => Array.isArray(item['result']));
  const refused = large.filter((item) => item['error'] !== undefined);
  assert.equal(answered.length, 3, 'as many answers as fit');
  assert.equal(refused.length, 5);
  for (const item of refused) {
    assert.deepEqual(item['error'], {
      code: -32005,
      message: `this batch's answer would pass this gateway's limit of ${limit} bytes (limits.maxAnswerBytes); ask in smaller batches`,
    });
  }

  const probe = await Probe.open(evmux.wsUrl, t);
  probe.send(batch(8));
  const overWs = (await probe.waitFor((frame) => Array.isArray(frame.json), 5000)).json as Array<{ error?: unknown }>;
  assert.equal(overWs.filter((item) => item.error !== undefined).length, 5, 'over WebSocket as well');
});

test('a subscription in a batch over maxAnswerBytes is answered with its id, never refused after it was made', async (t) => {
  const node = await FakeNode.start({ seed: 'answer-limit-subscribe' });
  t.after(() => node.close());
  // Two of these answers fill all but a few bytes of the batch's 64 KiB, and the subscription
  // settles after them: its answer is the one that would pass the limit.
  node.handle('web3_clientVersion', () => 'x'.repeat(32_700));
  let made = 0;
  node.handle('eth_subscribe', async () => {
    await sleep(200);
    return `0x${(++made).toString(16).padStart(32, 'a')}`;
  });
  const evmux = await startGateway([node.url], { limits: { maxAnswerBytes: 64 * 1024 } });
  t.after(() => evmux.close());
  const probe = await Probe.open(evmux.wsUrl, t);
  probe.send(
    JSON.stringify([
      { jsonrpc: '2.0', id: 1, method: 'eth_subscribe', params: ['logs', { address: '0x00000000000000000000000000000000000000aa' }] },
      { jsonrpc: '2.0', id: 2, method: 'web3_clientVersion', params: [] },
      { jsonrpc: '2.0', id: 3, method: 'web3_clientVersion', params: [] },
    ]),
  );
  const answers = (await probe.waitFor((frame) => Array.isArray(frame.json), 5000)).json as Array<{ id: number; result?: unknown; error?: { code: number } }>;
  const subscribed = answers.find((answer) => answer.id === 1);
  assert.match(String(subscribed?.result), /^0x[0-9a-f]+$/, `the subscription's id: ${JSON.stringify(subscribed)}`);
  assert.deepEqual(answers.filter((answer) => answer.id !== 1).map((answer) => answer.error?.code ?? 'result'), ['result', 'result'], 'both large answers fit');
  assert.equal(await evmux.metric('evmux_client_subscriptions', { kind: 'logs' }), 1, 'the subscription the client was told of, and no other');
});

test("a node that answers evmux's own calls over maxAnswerBytes is broken: it is marked down and reconnected to with backoff, its identity check's failure is logged", { timeout: 30_000 }, async (t) => {
  const nodes = await Promise.all([0, 1].map(() => FakeNode.start({ seed: 'answer-limit-broken', startHeight: 100 })));
  t.after(async () => {
    for (const node of nodes) await node.close();
  });
  const evmux = await startGateway(nodes.map((node) => node.url), { limits: { maxAnswerBytes: 65_536 }, reconnect: { baseMs: 500, maxMs: 2000 } });
  t.after(() => evmux.close());
  await waitUntil('two usable upstreams', async () => JSON.parse((await evmux.get('/readyz')).body).usableUpstreams === 2, 10_000);
  const huge = `0x${'ab'.repeat(65_536)}`;

  // Its probes' answers: the probe fails, the node leaves rotation, and it reconnects with backoff.
  nodes[1]!.handle('eth_blockNumber', () => huge);
  await waitUntil('node1 down', () => evmux.logs.some((line) => line['upstream'] === 'node1' && line['msg'] === 'upstream down'), 5_000);
  const connectsBefore = nodes[1]!.stats.connectionsTotal;
  await sleep(3_000);
  const connects = nodes[1]!.stats.connectionsTotal - connectsBefore;
  assert.ok(connects <= 6, `${connects} connects in 3 s (a reconnect every 100 ms would be 30)`);

  // Its identity check's answers too: each connect attempt fails, saying why.
  nodes[1]!.handle('eth_chainId', () => huge);
  await waitUntil('the identity check failure logged', () => evmux.logs.some((line) => line['upstream'] === 'node1' && line['msg'] === 'upstream connect failed' && /identity check/.test(String(line['err']))), 10_000);
  const quietFrom = evmux.logs.length;
  const before = nodes[1]!.stats.connectionsTotal;
  await sleep(3_000);
  // Two sockets (the calls', the streams' own), each on its backoff (up to 2 s): a loaded
  // machine saw 5; a reconnect every 100 ms would be 30.
  assert.ok(nodes[1]!.stats.connectionsTotal - before <= 6, `${nodes[1]!.stats.connectionsTotal - before} connects in 3 s`);
  const lines = evmux.logs.slice(quietFrom).filter((line) => line['upstream'] === 'node1' && (line['level'] as number) >= 30);
  assert.ok(lines.length <= 4, `log lines about node1 in 3 s: ${JSON.stringify(lines.map((line) => line['msg']))}`);
});

test('a client repeating a call whose answer is over maxAnswerBytes: one warning per 10 s per socket, no socket closed', { timeout: 30_000 }, async (t) => {
  const node = await FakeNode.start({ seed: 'answer-limit-quiet' });
  t.after(() => node.close());
  node.handle('eth_getLogs', () => [{ address: '0x00000000000000000000000000000000000000ee', data: `0x${'ab'.repeat(65_536)}` }]);
  const evmux = await startGateway([node.url], { limits: { maxAnswerBytes: 65_536 } });
  t.after(() => evmux.close());
  const from = evmux.logs.length;
  const client = await StreamClient.open(evmux.wsUrl, 'indexer');
  t.after(() => client.close());
  for (let i = 0; i < 20; i++) {
    const answer = await client.request('eth_getLogs', [{ fromBlock: '0x0' }]);
    assert.equal((answer['error'] as { code: number } | undefined)?.code, -32602);
    await sleep(100);
  }
  const lines = evmux.logs.slice(from).filter((line) => (line['level'] as number) >= 30 && line['upstream'] === 'node0');
  // The first on the socket it shared; the rest on a socket of its own, made for it.
  assert.deepEqual(
    lines.map((line) => `${String(line['socket'])} ${String(line['msg'])}`),
    [
      '0 upstream answer over limits.maxAnswerBytes skipped',
      'isolated socket of its own for the calls of clients whose answers passed limits.maxAnswerBytes',
      'isolated upstream socket open',
      'isolated upstream answer over limits.maxAnswerBytes skipped',
    ],
    'twenty such answers in 2 s: one warning per socket',
  );
  assert.equal(node.stats.connectionsTotal, 3, 'its call socket, its stream socket and the one made for the client: none closed');
  const status = JSON.parse((await evmux.get('/status')).body) as { upstreams: Array<{ isolatedSocket: unknown }> };
  assert.equal(status.upstreams[0]!.isolatedSocket, 'open', '/status shows the socket made for the client');
});

test("a client whose calls' answers pass maxAnswerBytes gets a socket of its own on each node: the calls of others beside its stream of them are all answered", { timeout: 30_000 }, async (t) => {
  const nodes = await wideLogNodes(t, 2, 'answer-limit-isolated', 65_536, 20, 30);
  const evmux = await startGateway(nodes.map((node) => node.url), { limits: { maxAnswerBytes: 65_536 }, reconnect: { baseMs: 100, maxMs: 10_000 } });
  t.after(() => evmux.close());
  await waitUntil('two usable upstreams', async () => JSON.parse((await evmux.get('/readyz')).body).usableUpstreams === 2, 10_000);
  // Both from 127.0.0.1, one session key: each WebSocket connection is a client of its own.
  const indexer = await StreamClient.open(evmux.wsUrl, 'indexer');
  t.after(() => indexer.close());
  const wallet = await StreamClient.open(evmux.wsUrl, 'wallet');
  t.after(() => wallet.close());

  let stop = false;
  const tooLarge: unknown[] = [];
  const hammer = async (): Promise<void> => {
    while (!stop) tooLarge.push(((await indexer.request('eth_getLogs', [{ fromBlock: '0x0' }])) as { error?: { code: number } }).error?.code);
  };
  const failures: unknown[] = [];
  let answered = 0;
  const reader = async (): Promise<void> => {
    while (!stop) {
      const answer = await wallet.request('eth_call', [{ to: '0x00000000000000000000000000000000000000ee' }, 'latest']);
      if (answer['result'] === '0x01') answered++;
      else failures.push(answer['error']);
    }
  };
  const loops = [...Array.from({ length: 4 }, hammer), ...Array.from({ length: 8 }, reader)];
  await sleep(3_000);
  stop = true;
  await Promise.all(loops);
  assert.ok(tooLarge.length >= 20, `the indexer's wide reads: ${tooLarge.length}`);
  assert.ok(tooLarge.every((code) => code === -32602), JSON.stringify(tooLarge.slice(0, 5)));
  assert.ok(answered >= 200, `the wallet's calls answered: ${answered}`);
  assert.deepEqual(failures, [], "none of the wallet's calls failed");
  assert.ok(evmux.logs.some((line) => line['msg'] === 'socket of its own for the calls of clients whose answers passed limits.maxAnswerBytes'));
});

test('many clients asking too much at once, each for the first time: each is told so, and no other call fails', { timeout: 30_000 }, async (t) => {
  const nodes = await wideLogNodes(t, 2, 'answer-limit-burst', 65_536, 5, 10);
  const evmux = await startGateway(nodes.map((node) => node.url), { limits: { maxAnswerBytes: 65_536 } });
  t.after(() => evmux.close());
  await waitUntil('two usable upstreams', async () => JSON.parse((await evmux.get('/readyz')).body).usableUpstreams === 2, 10_000);
  const offenders = await Promise.all(Array.from({ length: 60 }, (_, i) => StreamClient.open(evmux.wsUrl, `indexer-${i}`)));
  const wallet = await StreamClient.open(evmux.wsUrl, 'wallet');
  t.after(() => {
    for (const client of [...offenders, wallet]) client.close();
  });
  const before = nodes.map((node) => node.stats.connectionsTotal);
  const calls = Array.from({ length: 120 }, () => wallet.request('eth_call', [{ to: '0x00000000000000000000000000000000000000ee' }, 'latest']));
  const wide = await Promise.all(offenders.map((client) => client.request('eth_getLogs', [{ fromBlock: '0x0' }])));
  const codes = wide.map((answer) => (answer['error'] as { code: number } | undefined)?.code);
  assert.deepEqual(new Set(codes), new Set([-32602]), 'every offender is told it asked for too much');
  const answers = await Promise.all(calls);
  assert.deepEqual(answers.filter((answer) => answer['result'] !== '0x01').map((answer) => answer['error']).slice(0, 3), [], "none of the wallet's calls failed");
  assert.equal(total(nodes, 'eth_getLogs'), 60, 'each wide read asked of one node only');
  // Sockets of their own were made for the offenders; none of the sockets there before closed.
  assert.deepEqual(nodes.map((node, i) => node.stats.connectionsTotal - before[i]! - (node.stats.connections - 2)), [0, 0]);
});
