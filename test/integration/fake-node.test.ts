/**
 * Self-test of the fake node: every switch does what the fault tests rely on, and real client
 * libraries (viem, ethers) accept what it sends.
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { createPublicClient, webSocket } from 'viem';
import type { Block } from 'viem';
import { WebSocketProvider } from 'ethers';
import { FakeNode } from '../support/fake-node.js';
import type { FakeNodeOptions } from '../support/fake-node.js';
import { Probe, isObject, subscriptionOf } from '../support/ws-probe.js';

async function startNode(t: TestContext, options: FakeNodeOptions = {}): Promise<FakeNode> {
  const node = await FakeNode.start(options);
  t.after(() => node.close());
  return node;
}

async function post(node: FakeNode, body: unknown, signal?: AbortSignal): Promise<{ status: number; text: string }> {
  const init: RequestInit = { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
  if (signal !== undefined) init.signal = signal;
  const res = await fetch(node.httpUrl, init);
  return { status: res.status, text: await res.text() };
}

const rpc = (id: number, method: string, params: unknown[] = []): Record<string, unknown> => ({ jsonrpc: '2.0', id, method, params });

await test('fake node: answers the basic methods like a node', async (t) => {
  const node = await startNode(t);
  const probe = await Probe.open(node.url, t);
  assert.equal(await probe.call('eth_chainId'), '0x7a69');
  assert.equal(await probe.call('net_version'), '31337');
  assert.match(String(await probe.call('web3_clientVersion')), /FakeNode/);
  assert.equal(await probe.call('eth_blockNumber'), '0x64');
  assert.equal(await probe.call('eth_getBalance', ['0x0000000000000000000000000000000000000001', 'latest']), '0x0');
  assert.equal(await probe.call('eth_call', [{ to: '0x0000000000000000000000000000000000000001' }, 'latest']), '0x');
  assert.match(String(await probe.call('eth_sendRawTransaction', ['0x02f8'])), /^0x[0-9a-f]{64}$/);

  const latest = (await probe.call('eth_getBlockByNumber', ['latest', true])) as Record<string, unknown>;
  assert.equal(latest['number'], '0x64');
  assert.equal(latest['hash'], node.head.hash);
  assert.deepEqual(latest['transactions'], []);
  const parent = (await probe.call('eth_getBlockByNumber', ['0x63', false])) as Record<string, unknown>;
  assert.equal(latest['parentHash'], parent['hash']);
  const earliest = (await probe.call('eth_getBlockByNumber', ['earliest', false])) as Record<string, unknown>;
  assert.equal(earliest['number'], '0x0');
  assert.equal(await probe.call('eth_getBlockByNumber', ['0x65', false]), null);
  const byHash = (await probe.call('eth_getBlockByHash', [parent['hash'], false])) as Record<string, unknown>;
  assert.equal(byHash['number'], '0x63');
  assert.equal(await probe.call('eth_getBlockByHash', [`0x${'ab'.repeat(32)}`, false]), null);

  const unknown = await probe.request('eth_doesNotExist');
  assert.equal((unknown['error'] as { code: number }).code, -32601);
  assert.equal(node.stats.requests.get('eth_chainId'), 1);
});

await test('fake node: derives the same chain from the same seed and a different one from another seed', async (t) => {
  const [a, b, c] = await Promise.all([startNode(t, { seed: 's' }), startNode(t, { seed: 's' }), startNode(t, { seed: 'x' })]);
  a.advance(3);
  b.advance(3);
  c.advance(3);
  assert.deepEqual(a.head, b.head);
  assert.notEqual(a.head.hash, c.head.hash);
  a.reorg(2);
  b.reorg(2);
  assert.deepEqual(a.head, b.head);
  assert.equal(a.header(103n)?.parentHash, a.header(102n)?.hash);
});

await test("fake node: hang: accepts a request and never answers it, until switched back", async (t) => {
  const node = await startNode(t);
  const probe = await Probe.open(node.url, t);
  node.mode = 'hang';
  await assert.rejects(probe.request('eth_blockNumber', [], 300), /no matching frame/);
  assert.equal(node.stats.requests.get('eth_blockNumber'), 1);
  node.mode = 'normal';
  assert.equal(await probe.call('eth_blockNumber'), '0x64');
});

await test('fake node: garbage: answers with a frame that is not JSON', async (t) => {
  const node = await startNode(t);
  const probe = await Probe.open(node.url, t);
  node.mode = 'garbage';
  probe.send(rpc(1, 'eth_chainId'));
  const frame = await probe.waitFor(() => true);
  assert.equal(frame.json, undefined);
  assert.throws(() => JSON.parse(frame.raw) as unknown);
});

await test('fake node: error: answers with a JSON-RPC internal error', async (t) => {
  const node = await startNode(t);
  const probe = await Probe.open(node.url, t);
  node.mode = 'error';
  const reply = await probe.request('eth_chainId');
  assert.equal((reply['error'] as { code: number }).code, -32603);
});

await test('fake node: latencyMs delays each response', async (t) => {
  const node = await startNode(t);
  const probe = await Probe.open(node.url, t);
  node.latencyMs = 150;
  const started = performance.now();
  await probe.call('eth_chainId');
  assert.ok(performance.now() - started >= 140, 'answered too early');
  node.latencyMs = 0;
  const fast = performance.now();
  await probe.call('eth_chainId');
  assert.ok(performance.now() - fast < 100, 'latency not removed');
});

await test('fake node: answerPings controls pongs', async (t) => {
  const node = await startNode(t);
  const probe = await Probe.open(node.url, t);
  let pongs = 0;
  probe.ws.on('pong', () => (pongs += 1));
  probe.ws.ping();
  await new Promise((resolve) => probe.ws.once('pong', resolve));
  node.answerPings = false;
  probe.ws.ping();
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(pongs, 1);
  assert.equal(node.stats.pingsReceived, 2);
});

await test('fake node: emitHeads=false grows the chain without notifications', async (t) => {
  const node = await startNode(t);
  const probe = await Probe.open(node.url, t);
  const sub = await probe.call('eth_subscribe', ['newHeads']);
  assert.match(String(sub), /^0x[0-9a-f]+$/);
  assert.equal(node.stats.liveSubscriptions, 1);
  node.advance();
  const first = await probe.notification(sub);
  assert.equal(first['number'], '0x65');
  for (const field of ['miner', 'stateRoot', 'transactionsRoot', 'receiptsRoot', 'logsBloom', 'difficulty', 'gasLimit', 'gasUsed', 'extraData', 'baseFeePerGas', 'nonce', 'mixHash', 'sha3Uncles', 'timestamp']) {
    assert.match(String(first[field]), /^0x[0-9a-f]*$/, field);
  }
  node.emitHeads = false;
  node.advance(2);
  await probe.expectNone((f) => subscriptionOf(f) === sub, 150);
  assert.equal(await probe.call('eth_blockNumber'), '0x67');
  node.emitHeads = true;
  node.advance();
  const next = await probe.notification(sub);
  assert.equal(next['number'], '0x68');
  assert.equal(next['parentHash'], node.header(0x67n)?.hash);
  assert.equal(await probe.call('eth_unsubscribe', [sub]), true);
  assert.equal(await probe.call('eth_unsubscribe', [sub]), false);
  assert.equal(node.stats.liveSubscriptions, 0);
});

await test('fake node: reorg notifies the new branch, re-sends orphaned logs as removed, keeps orphans by hash', async (t) => {
  const node = await startNode(t);
  const probe = await Probe.open(node.url, t);
  const heads = await probe.call('eth_subscribe', ['newHeads']);
  const address = '0x00000000000000000000000000000000000000aa';
  const logs = await probe.call('eth_subscribe', ['logs', { address }]);
  node.addLog({ address, topics: [`0x${'11'.repeat(32)}`] });
  node.addLog({ address: '0x00000000000000000000000000000000000000bb' });
  node.advance(2); // log in 101, head 102
  assert.equal((await probe.notification(heads))['number'], '0x65');
  const log = await probe.notification(logs);
  assert.equal(log['blockNumber'], '0x65');
  assert.equal(log['removed'], false);
  assert.equal((await probe.notification(heads))['number'], '0x66');
  const orphan = node.header(0x65n);
  assert.ok(orphan !== undefined);

  node.reorg(2); // replaces 101..102 with 101'..103'
  const removed = await probe.notification(logs);
  assert.equal(removed['removed'], true);
  assert.equal(removed['blockHash'], orphan.hash);
  let parent: string | undefined = node.header(0x64n)?.hash;
  for (const number of ['0x65', '0x66', '0x67']) {
    const head = await probe.notification(heads);
    assert.equal(head['number'], number);
    assert.equal(head['parentHash'], parent);
    parent = head['hash'] as string;
  }
  assert.equal(parent, node.head.hash);
  assert.notEqual(node.header(0x65n)?.hash, orphan.hash);
  const old = (await probe.call('eth_getBlockByHash', [orphan.hash, false])) as Record<string, unknown>;
  assert.equal(old['hash'], orphan.hash);
  assert.deepEqual(await probe.call('eth_getLogs', [{ fromBlock: '0x0', toBlock: 'latest' }]), []);
  assert.equal((await probe.call('eth_getLogs', [{ blockHash: orphan.hash, address }]) as unknown[]).length, 1);
});

await test('fake node: eth_getLogs filters by range, address and topics', async (t) => {
  const node = await startNode(t);
  const probe = await Probe.open(node.url, t);
  const topic: `0x${string}` = `0x${'22'.repeat(32)}`;
  node.addLog({ address: '0x00000000000000000000000000000000000000aa', topics: [topic] }, 50n);
  node.addLog({ address: '0x00000000000000000000000000000000000000bb' }, 60n);
  const all = (await probe.call('eth_getLogs', [{ fromBlock: '0x0', toBlock: 'latest' }])) as Record<string, unknown>[];
  assert.deepEqual(all.map((l) => l['blockNumber']), ['0x32', '0x3c']);
  const byTopic = (await probe.call('eth_getLogs', [{ fromBlock: 'earliest', topics: [topic] }])) as unknown[];
  assert.equal(byTopic.length, 1);
  const byRange = (await probe.call('eth_getLogs', [{ fromBlock: '0x33', toBlock: '0x64' }])) as Record<string, unknown>[];
  assert.equal(byRange[0]?.['address'], '0x00000000000000000000000000000000000000bb');
  const block = (await probe.call('eth_getBlockByNumber', ['0x32', false])) as Record<string, unknown>;
  assert.notEqual(block['logsBloom'], `0x${'00'.repeat(256)}`);
});

await test('fake node: notifyHead, notify and sendRaw inject arbitrary frames', async (t) => {
  const node = await startNode(t);
  const probe = await Probe.open(node.url, t);
  const sub = await probe.call('eth_subscribe', ['newHeads']);
  const old = node.header(90n);
  assert.ok(old !== undefined);
  node.notifyHead(old);
  node.notifyHead(old);
  assert.equal((await probe.notification(sub))['hash'], old.hash);
  assert.equal((await probe.notification(sub))['hash'], old.hash);
  node.notify('newHeads', { broken: true });
  assert.deepEqual(await probe.notification(sub), { broken: true });
  node.sendRaw('{"jsonrpc":"2.0","id":999,"result":"0x1"}');
  await probe.waitFor((f) => isObject(f.json) && f.json['id'] === 999);
});

await test('fake node: handle overrides a method with results, errors and async answers', async (t) => {
  const node = await startNode(t);
  const probe = await Probe.open(node.url, t);
  node.handle('eth_blockNumber', () => '0x1');
  node.handle('eth_gasPrice', () => {
    throw { code: -32005, message: 'rate limited' };
  });
  node.handle('custom_slow', async (params) => {
    await new Promise((resolve) => setTimeout(resolve, 20));
    return params;
  });
  assert.equal(await probe.call('eth_blockNumber'), '0x1');
  assert.deepEqual((await probe.request('eth_gasPrice'))['error'], { code: -32005, message: 'rate limited' });
  assert.deepEqual(await probe.call('custom_slow', [1, 'a']), [1, 'a']);
  node.unhandle('eth_blockNumber');
  assert.equal(await probe.call('eth_blockNumber'), '0x64');
});

await test('fake node: batches are answered as arrays; bad frames get JSON-RPC errors', async (t) => {
  const node = await startNode(t);
  const probe = await Probe.open(node.url, t);
  probe.send([rpc(10, 'eth_chainId'), { jsonrpc: '2.0', method: 'eth_chainId' }, rpc(11, 'nope_nope')]);
  const batch = await probe.waitFor((f) => Array.isArray(f.json));
  const replies = batch.json as Record<string, unknown>[];
  assert.deepEqual(replies.map((r) => r['id']), [10, 11]);
  assert.equal(replies[0]?.['result'], '0x7a69');
  assert.equal((replies[1]?.['error'] as { code: number }).code, -32601);
  assert.equal(node.stats.requests.get('eth_chainId'), 2);
  probe.send('[]');
  assert.equal(((await probe.waitFor(() => true)).json as { error: { code: number } }).error.code, -32600);
  probe.send('{not json');
  assert.equal(((await probe.waitFor(() => true)).json as { error: { code: number } }).error.code, -32700);
});

await test('fake node: dropConnections closes sockets abruptly; acceptConnections=false refuses new ones', async (t) => {
  const node = await startNode(t);
  const probe = await Probe.open(node.url, t);
  await probe.call('eth_subscribe', ['newHeads']);
  const closed = new Promise<number>((resolve) => probe.ws.once('close', resolve));
  node.dropConnections();
  assert.equal(await closed, 1006);
  assert.equal(node.stats.connections, 0);
  assert.equal(node.stats.liveSubscriptions, 0);

  const again = await Probe.open(node.url, t);
  assert.equal(await again.call('eth_chainId'), '0x7a69');
  assert.equal(node.stats.connections, 1);
  assert.equal(node.stats.connectionsTotal, 2);

  node.acceptConnections = false;
  const refused = new WebSocket(node.url);
  t.after(() => refused.terminate());
  await assert.rejects(
    new Promise((resolve, reject) => {
      refused.once('open', resolve);
      refused.once('error', reject);
    }),
    /503/,
  );
});

await test('fake node: answers JSON-RPC over HTTP POST with the same switches', async (t) => {
  const node = await startNode(t);
  const single = await post(node, rpc(1, 'eth_blockNumber'));
  assert.equal(single.status, 200);
  assert.equal((JSON.parse(single.text) as { result: string }).result, '0x64');
  const batch = JSON.parse((await post(node, [rpc(1, 'eth_chainId'), rpc(2, 'net_version')])).text) as { result: string }[];
  assert.deepEqual(batch.map((r) => r.result), ['0x7a69', '31337']);
  const sub = JSON.parse((await post(node, rpc(3, 'eth_subscribe', ['newHeads']))).text) as { error: { code: number } };
  assert.equal(sub.error.code, -32601);

  node.mode = 'error';
  assert.equal((JSON.parse((await post(node, rpc(4, 'eth_chainId'))).text) as { error: { code: number } }).error.code, -32603);
  node.mode = 'garbage';
  const garbage = await post(node, rpc(5, 'eth_chainId'));
  assert.throws(() => JSON.parse(garbage.text) as unknown);
  node.mode = 'hang';
  await assert.rejects(post(node, rpc(6, 'eth_chainId'), AbortSignal.timeout(300)), { name: 'TimeoutError' });
  node.mode = 'normal';
  node.latencyMs = 100;
  const started = performance.now();
  await post(node, rpc(7, 'eth_chainId'));
  assert.ok(performance.now() - started >= 90);
});

await test('fake node: blockTimeMs advances the chain by itself', async (t) => {
  const node = await startNode(t, { blockTimeMs: 40 });
  const probe = await Probe.open(node.url, t);
  const sub = await probe.call('eth_subscribe', ['newHeads']);
  const a = await probe.notification(sub);
  const b = await probe.notification(sub);
  assert.equal(BigInt(b['number'] as string), BigInt(a['number'] as string) + 1n);
});

await test('fake node: viem and ethers parse its blocks and heads', async (t) => {
  const node = await startNode(t, { chainId: 1 });
  const client = createPublicClient({ transport: webSocket(node.url, { reconnect: false }) });
  t.after(async () => (await client.transport.getRpcClient()).close());
  assert.equal(await client.getBlockNumber({ cacheTime: 0 }), 100n);
  const block = await client.getBlock({ blockTag: 'latest' });
  assert.equal(block.hash, node.head.hash);
  const seen = new Promise<Block>((resolve, reject) => {
    const unwatch = client.watchBlocks({
      onBlock: (b) => {
        unwatch();
        resolve(b);
      },
      onError: reject,
      emitOnBegin: false,
    });
  });
  await new Promise((resolve) => setTimeout(resolve, 50)); // let the subscription land
  node.advance();
  assert.equal((await seen).number, 101n);

  const provider = new WebSocketProvider(node.url);
  t.after(() => provider.destroy());
  const ethersBlock = await provider.getBlock(50);
  assert.equal(ethersBlock?.hash, node.header(50n)?.hash);
  assert.equal(ethersBlock?.parentHash, node.header(49n)?.hash);
});
