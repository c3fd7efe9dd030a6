/**
 * A node's subscriptions ride on a socket of their own (`upstreams[].streamSocket: own`, the
 * default), so a large answer on the way back from the node does not hold up the notifications
 * behind it. Shown with a real anvil node behind a narrow link (test/support/slow-link.ts), once
 * with each setting: with `shared` the same rig delays heads by about an answer's transfer time,
 * which is what makes the `own` case's bound mean something. Then, with a fake node, what happens
 * when that socket drops: a call socket stands in, the streams stay there while the socket flaps
 * and come back to it once it has stayed open for a second, and the client's stream has no gap,
 * no duplicate and keeps its id.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, test } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import type { UpstreamConfig } from '../../src/config/schema.js';
import { FakeNode } from '../support/fake-node.js';
import { startGateway } from '../support/gateway.js';
import { canonicalHashes } from '../support/node-rpc.js';
import { SlowLink } from '../support/slow-link.js';
import { headProblems, sleep, StreamClient, waitUntil } from '../support/stream-recorder.js';

const LINK_BYTES_PER_SECOND = 2_000_000;
/** eth_call of code (put in place by a state override) that returns this many zero bytes: an answer of twice as many hex digits */
const ANSWER_BYTES = 1_000_000;
const RETURNER = '0x00000000000000000000000000000000000e0e0e';
const BIG_CALL = [{ to: RETURNER }, 'latest', { [RETURNER]: { code: `0x62${ANSWER_BYTES.toString(16).padStart(6, '0')}6000f3` } }];
const BLOCKS = 6;
const BLOCK_GAP_MS = 500;

let devnet: LockstepDevnet;
before(async () => {
  devnet = await LockstepDevnet.start({ nodes: 1, blockTimeMs: 0, traffic: false });
});
after(async () => {
  await devnet?.close();
});

/** How long each of BLOCKS heads took to reach a subscriber while another client pulls large answers. */
async function headDelaysUnderLargeAnswers(streamSocket: UpstreamConfig['streamSocket']): Promise<{ delays: number[]; answers: number }> {
  const link = await SlowLink.start(devnet.nodes[0]!.port, { down: LINK_BYTES_PER_SECOND });
  const evmux = await startGateway([{ name: 'node0', url: `ws://127.0.0.1:${link.port}`, streamSocket }], { requestTimeoutMs: 10_000 });
  const listener = await StreamClient.open(evmux.wsUrl, 'listener');
  const puller = await StreamClient.open(evmux.wsUrl, 'puller');
  try {
    const id = await listener.subscribe(['newHeads']);
    await listener.first(id);
    let pulling = true;
    let answers = 0;
    const pulls = (async () => {
      while (pulling) {
        const reply = await puller.request('eth_call', BIG_CALL, 10_000);
        assert.equal((reply.result as string).length, 2 + 2 * ANSWER_BYTES, `the large answer: ${JSON.stringify(reply).slice(0, 200)}`);
        answers++;
      }
    })();
    await sleep(200);
    const delays: number[] = [];
    for (let i = 0; i < BLOCKS; i++) {
      const before = listener.notifications(id).length;
      const minedAt = performance.now();
      await devnet.mine();
      await waitUntil(`head ${i + 1} through evmux`, () => listener.notifications(id).length > before, 5000, 2);
      delays.push(performance.now() - minedAt);
      await sleep(BLOCK_GAP_MS);
    }
    pulling = false;
    await pulls;
    const heads = listener.heads(id);
    const tip = heads.at(-1)!.number;
    assert.deepEqual(headProblems(heads, await canonicalHashes(devnet.nodes[0]!.httpUrl, heads[0]!.number, tip), tip, 'unchecked'), []);
    return { delays, answers };
  } finally {
    listener.close();
    puller.close();
    await evmux.close();
    await link.close();
  }
}

test('with a socket of their own, heads are not held up behind large answers on a narrow link', async () => {
  const { delays, answers } = await headDelaysUnderLargeAnswers('own');
  assert.ok(answers >= 2, `the link was busy with large answers all along (${answers} answered)`);
  assert.ok(Math.max(...delays) < 250, `heads arrived within 250 ms of being mined: ${delays.map(Math.round).join(', ')} ms`);
});

test('on a shared socket the same rig holds heads up behind the answers (the case the setting is for)', async () => {
  const { delays } = await headDelaysUnderLargeAnswers('shared');
  assert.ok(Math.max(...delays) > 300, `some head waited behind an answer: ${delays.map(Math.round).join(', ')} ms`);
});

test('when the stream socket drops, a call socket stands in; the streams stay there while it flaps, then come back to it, gaplessly under the same id', async (t) => {
  const node = await FakeNode.start({ blockTimeMs: 50 });
  t.after(() => node.close());
  const evmux = await startGateway([node.url]);
  t.after(() => evmux.close());
  const client = await StreamClient.open(evmux.wsUrl, 'client');
  t.after(() => client.close());
  const id = await client.subscribe(['newHeads']);
  await client.first(id);

  const holder = (): { subscriptions: number; calls: number } | undefined => node.sockets().find((socket) => socket.subscriptions > 0);
  await waitUntil('probes on the call socket', () => node.sockets().some((socket) => socket.calls > 0), 5000);
  assert.equal(node.stats.connections, 2, 'one call socket and one for subscriptions');
  assert.equal(holder()?.calls, 0, 'the socket that holds the subscription carries no calls');

  node.acceptConnections = false;
  node.dropSockets((socket) => socket.subscriptions > 0);
  await waitUntil('the subscription on the call socket', () => (holder()?.calls ?? 0) > 0, 5000);
  const onStandIn = client.tip(id);
  await waitUntil('heads while on the stand-in', () => client.tip(id) >= onStandIn + 3n, 5000);

  // The node lets the stream socket connect again but drops it at once, for 2 s: the streams stay
  // on the stand-in rather than moving to and fro, each move an eth_subscribe and a replay.
  node.acceptConnections = true;
  const subscribes = node.stats.requests.get('eth_subscribe') ?? 0;
  let flaps = 0;
  const flapUntil = performance.now() + 2000;
  while (performance.now() < flapUntil) {
    flaps += node.dropSockets((socket) => socket.calls === 0);
    await sleep(20);
  }
  assert.ok(flaps >= 3, `the stream socket came back and was dropped ${flaps} times`);
  assert.equal(node.stats.requests.get('eth_subscribe') ?? 0, subscribes, 'no subscription moved while it flapped');

  // Left open, it takes the streams back after a second.
  await waitUntil('the stream socket open', () => node.sockets().length === 2, 5000);
  const reopened = performance.now();
  await waitUntil('the subscription back on a socket without calls', () => holder()?.calls === 0, 5000);
  assert.ok(performance.now() - reopened >= 900, `moved back ${Math.round(performance.now() - reopened)} ms after the socket opened`);
  await waitUntil('the stand-in subscription dropped', () => node.stats.liveSubscriptions === 1, 5000);
  const back = client.tip(id);
  await waitUntil('heads after coming back', () => client.tip(id) >= back + 3n, 5000);

  const heads = client.heads(id);
  const canonical = new Map<bigint, string>();
  for (let n = heads[0]!.number; n <= client.tip(id); n++) canonical.set(n, node.header(n)!.hash);
  assert.deepEqual(headProblems(heads, canonical, client.tip(id), 'unchecked'), []);
  assert.deepEqual(client.foreign, [], 'every notification came under the id the client was given');
  assert.equal(await evmux.metric('evmux_upstream_subscriptions', { upstream: 'node0', kind: 'newHeads' }), 1);
});

test('streamSocket: shared keeps one socket per node, which carries calls and subscriptions', async (t) => {
  const node = await FakeNode.start({ blockTimeMs: 50 });
  t.after(() => node.close());
  const evmux = await startGateway([{ name: 'node0', url: node.url, streamSocket: 'shared' }]);
  t.after(() => evmux.close());
  const client = await StreamClient.open(evmux.wsUrl, 'client');
  t.after(() => client.close());
  const id = await client.subscribe(['newHeads']);
  await client.first(id);
  await waitUntil('probes', () => (node.sockets()[0]?.calls ?? 0) > 0, 5000);
  assert.equal(node.stats.connections, 1);
  assert.equal(node.sockets()[0]?.subscriptions, 1);
  const status = JSON.parse((await evmux.get('/status')).body) as { upstreams: Array<{ streamsOnOwnSocket: boolean }> };
  assert.equal(status.upstreams[0]?.streamsOnOwnSocket, false);
});

test('an answer over the limit on the call socket standing in for the stream socket leaves the node in rotation', async (t) => {
  // The call socket closed by evmux itself (the answer is the asker's) while it carried the streams:
  // they went back to their own socket in that turn, and the node, seen for a moment with no call
  // socket open, was taken out of rotation for good while /status showed it usable.
  const nodes = await Promise.all([0, 1].map(() => FakeNode.start({ seed: 'stand-in' })));
  t.after(() => Promise.all(nodes.map((node) => node.close())));
  const evmux = await startGateway(nodes.map((node) => node.url), { limits: { maxAnswerBytes: 100_000 } });
  t.after(() => evmux.close());
  const status = async (): Promise<Array<{ usable: boolean; streamsOnOwnSocket: boolean }>> =>
    (JSON.parse((await evmux.get('/status')).body) as { upstreams: Array<{ usable: boolean; streamsOnOwnSocket: boolean }> }).upstreams;
  await waitUntil('both nodes usable', async () => (await status()).every((upstream) => upstream.usable), 5000);
  let id = 1;
  const call = async (method: string, params: unknown[]): Promise<{ error?: { message: string } }> =>
    (await (await fetch(evmux.httpUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: id++, method, params }) })).json()) as { error?: { message: string } };
  const node0Share = async (): Promise<number> => {
    const before = nodes[0]!.stats.requests.get('eth_getBalance') ?? 0;
    await Promise.all(Array.from({ length: 40 }, (_, i) => call('eth_getBalance', [`0x${String(i).padStart(40, '0')}`, 'latest'])));
    return (nodes[0]!.stats.requests.get('eth_getBalance') ?? 0) - before;
  };
  for (const node of nodes) node.handle('eth_call', () => `0x${'ab'.repeat(100_000)}`);

  nodes[0]!.dropSockets((socket) => socket.calls === 0);
  await waitUntil('node0 streams on the stand-in, their socket back', async () => (await status())[0]!.streamsOnOwnSocket === false && nodes[0]!.stats.connections === 2, 3000, 5);
  let oversized = false;
  for (let i = 0; i < 6 && !oversized; i++) {
    const sent = nodes[0]!.stats.requests.get('eth_call') ?? 0;
    const reply = await call('eth_call', [{ to: '0x00000000000000000000000000000000000000aa', data: '0x' }, 'latest']);
    oversized = (nodes[0]!.stats.requests.get('eth_call') ?? 0) > sent && /larger than/.test(reply.error?.message ?? '');
  }
  assert.ok(oversized, 'node0 sent an answer over the limit');
  await waitUntil('the streams back on their own socket', async () => (await status())[0]!.streamsOnOwnSocket, 5000);
  assert.ok((await status())[0]!.usable, 'node0 usable in /status');
  const share = await node0Share();
  assert.ok(share >= 10, `node0 took ${share} of 40 calls`);
});
