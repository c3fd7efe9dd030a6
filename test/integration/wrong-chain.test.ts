/**
 * Every upstream must serve the same chain: a node that reports another eth_chainId, when it
 * first connects or when it comes back, takes no calls and no subscriptions, and says why in the
 * log and /status. Once the chain is known, eth_chainId is answered by evmux itself. The fake
 * node plays the node of the wrong chain (anvil's chain id could be set, but not swapped behind
 * one URL while evmux holds it).
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { FakeNode } from '../support/fake-node.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { StreamClient, waitUntil } from '../support/stream-recorder.js';
import { tcpBalancer } from '../support/tcp-balancer.js';

interface StatusUpstream {
  name: string;
  usable: boolean;
  wrongChain: string | null;
}

async function node(t: TestContext, chainId: number, port?: number): Promise<FakeNode> {
  const started = await FakeNode.start({ chainId, ...(port === undefined ? {} : { port }) });
  t.after(() => started.close());
  return started;
}

async function statusOf(evmux: TestGateway): Promise<StatusUpstream[]> {
  return (JSON.parse((await evmux.get('/status')).body) as { upstreams: StatusUpstream[] }).upstreams;
}

async function call(evmux: TestGateway, method: string, params: unknown[] = []): Promise<unknown> {
  const response = await fetch(evmux.httpUrl, { method: 'POST', body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) });
  return ((await response.json()) as { result?: unknown }).result;
}

await test('a node of another chain takes no traffic; the log and /status say why; eth_chainId is answered without a node', async (t) => {
  const right = await node(t, 1);
  const wrong = await node(t, 5);
  const evmux = await startGateway([{ name: 'right', url: right.url }, { name: 'wrong', url: wrong.url }], { chainId: 1 });
  t.after(() => evmux.close());
  await waitUntil('the wrong node refused', async () => (await statusOf(evmux)).some((u) => u.wrongChain !== null), 5000);
  await new Promise((resolve) => setTimeout(resolve, 600));
  const status = await statusOf(evmux);
  assert.deepEqual(
    status.map(({ name, usable, wrongChain }) => ({ name, usable, wrongChain })),
    [
      { name: 'right', usable: true, wrongChain: null },
      { name: 'wrong', usable: false, wrongChain: 'serves chain 5, not chain 1 (chainId in the config)' },
    ],
  );
  for (let i = 0; i < 10; i++) assert.equal(await call(evmux, 'eth_getBalance', ['0x0000000000000000000000000000000000000001', 'latest']), '0x0');
  assert.equal(wrong.stats.requests.get('eth_getBalance'), undefined, 'no call went to the wrong chain');
  assert.equal(wrong.stats.requests.get('eth_blockNumber'), undefined, 'not even a health probe');
  assert.equal(right.stats.requests.get('eth_getBalance'), 10);

  const asked = right.stats.requests.get('eth_chainId');
  assert.equal(await call(evmux, 'eth_chainId'), '0x1');
  assert.equal(right.stats.requests.get('eth_chainId'), asked, 'eth_chainId answered by evmux');
  const refusals = evmux.logs.filter((line) => line['msg'] === 'upstream serves another chain: it takes no traffic');
  assert.equal(refusals.length, 1, 'logged once, not on every probe');
  assert.equal(refusals[0]!['level'], 50);
  assert.equal(refusals[0]!['upstream'], 'wrong');
});

await test('without chainId the first node to answer sets the chain; a node that comes back on another chain is kept out', async (t) => {
  const first = await node(t, 31337);
  const second = await node(t, 31337);
  // Slow to answer, so the first node's answer sets the chain.
  second.latencyMs = 100;
  const evmux = await startGateway([{ name: 'first', url: first.url }, { name: 'second', url: second.url }]);
  t.after(() => evmux.close());
  await waitUntil('both usable', async () => (await statusOf(evmux)).every((u) => u.usable), 5000);
  assert.equal(await call(evmux, 'eth_chainId'), '0x7a69');

  // The second node's URL now reaches a node of another chain.
  const port = second.port;
  await second.close();
  await waitUntil('the second node down', async () => !(await statusOf(evmux))[1]!.usable, 5000);
  await node(t, 11155111, port);
  await waitUntil('the newcomer refused', async () => (await statusOf(evmux))[1]!.wrongChain !== null, 5000);
  const [, back] = await statusOf(evmux);
  assert.equal(back!.usable, false);
  assert.equal(back!.wrongChain, 'serves chain 11155111, not chain 31337 (the first node to answer)');
});

await test('every socket shows its chain: sockets that reconnect alone to another chain behind a balancer stay closed, the node goes on over the one left', async (t) => {
  const right = await node(t, 31337);
  const wrong = await node(t, 1337);
  const lb = await tcpBalancer([right]);
  t.after(() => lb.close());
  const evmux = await startGateway([{ name: 'provider', url: `ws://127.0.0.1:${lb.port}`, connections: 2 }]);
  t.after(() => evmux.close());
  await waitUntil('usable, over three sockets', async () => (await statusOf(evmux))[0]!.usable && lb.open === 3, 5000);
  const heads = await StreamClient.open(evmux.wsUrl, 'wallet');
  t.after(() => heads.close());
  const id = await heads.subscribe(['newHeads']);

  await waitUntil('the stream on its socket', () => right.stats.liveSubscriptions > 0, 5000);
  // The balancer now sends new connections to a node of another chain; the stream socket and one
  // call socket drop and reconnect there.
  lb.target = wrong;
  let callSockets = 0;
  assert.equal(right.dropSockets((socket) => socket.subscriptions > 0 || callSockets++ === 0), 2);
  await waitUntil('both refused', () => (wrong.stats.requests.get('eth_chainId') ?? 0) >= 2, 10_000);
  await waitUntil('the refusal in /status', async () => (await statusOf(evmux))[0]!.wrongChain !== null, 5000);
  await waitUntil('the stream back on a socket of the right chain', () => right.stats.liveSubscriptions > 0, 5000);
  const [status] = await statusOf(evmux);
  assert.equal(status!.wrongChain, 'serves chain 1337, not chain 31337 (the first node to answer)');
  assert.equal(status!.usable, true, 'usable over the call socket that stayed');

  for (let i = 0; i < 20; i++) assert.equal(await call(evmux, 'eth_getBalance', ['0x0000000000000000000000000000000000000001', 'latest']), '0x0');
  right.advance(1);
  await waitUntil('a head after the cut', () => heads.heads(id).length > 0, 5000);
  for (const method of ['eth_getBalance', 'eth_blockNumber', 'eth_subscribe']) assert.equal(wrong.stats.requests.get(method), undefined, `no ${method} went to the other chain`);
  const refusals = evmux.logs.filter((line) => line['msg'] === 'upstream serves another chain: it takes no traffic');
  assert.equal(refusals.length, 1, 'logged once');
});

await test('a node of another network with the same chain id (another genesis block) is refused', async (t) => {
  const first = await FakeNode.start({ seed: 'one network' });
  const other = await FakeNode.start({ seed: 'another network' });
  t.after(() => Promise.all([first.close(), other.close()]));
  // Slow to answer, so the first node's genesis is the pool's.
  other.latencyMs = 100;
  const evmux = await startGateway([{ name: 'first', url: first.url }, { name: 'other', url: other.url }]);
  t.after(() => evmux.close());
  await waitUntil('the other network refused', async () => (await statusOf(evmux))[1]!.wrongChain !== null, 5000);
  const [, refused] = await statusOf(evmux);
  assert.equal(refused!.usable, false);
  assert.match(refused!.wrongChain!, /^its genesis block is 0x[0-9a-f]{64}, not 0x[0-9a-f]{64} \(the nodes evmux is connected to\): another network with chain id 31337$/);
  for (let i = 0; i < 10; i++) await call(evmux, 'eth_getBalance', ['0x0000000000000000000000000000000000000001', 'latest']);
  assert.equal(other.stats.requests.get('eth_getBalance'), undefined);
});

await test('a lone node restarted with a new genesis block (an anvil devnet) is served again: the genesis is held only while a socket that showed it is open', async (t) => {
  const before = await FakeNode.start({ seed: 'devnet, first start' });
  const port = before.port;
  const evmux = await startGateway([before.url]);
  t.after(() => evmux.close());
  assert.equal((await call(evmux, 'eth_getBalance', ['0x0000000000000000000000000000000000000001', 'latest'])), '0x0');
  await before.close();
  await waitUntil('the node down', async () => !(await statusOf(evmux))[0]!.usable, 5000);
  const after = await FakeNode.start({ seed: 'devnet, second start', port });
  t.after(() => after.close());
  await waitUntil('the restarted node usable', async () => (await statusOf(evmux))[0]!.usable, 10_000);
  assert.equal((await statusOf(evmux))[0]!.wrongChain, null);
  assert.equal((await call(evmux, 'eth_getBalance', ['0x0000000000000000000000000000000000000001', 'latest'])), '0x0');
});
