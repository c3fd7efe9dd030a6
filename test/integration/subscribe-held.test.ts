/**
 * A node whose stream socket was made anew onto a backend that answers calls but never answers
 * eth_subscribe (a provider's load balancer put it there): the stream cannot be made, and the
 * pool sees nothing wrong. Such a stream counts as silent once the chain moves on for
 * health.stallMs, as a live one that stopped does: its sessions go to another node, and with none
 * its socket is made anew each stallMs. Before, the stream was silent for good (0 heads in 12 s
 * while the chain grew 38 blocks). Real anvil nodes, each behind a relay that can hold
 * eth_subscribe on the connections it takes.
 */
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { canonicalHashes } from '../support/node-rpc.js';
import { headProblems, pinnedUpstream, StreamClient, waitUntil } from '../support/stream-recorder.js';
import { SubscribeHoldRelay } from '../support/subscribe-hold-relay.js';

const STALL_MS = 1000;
const BLOCK_TIME_MS = 250;
/** Silent for stallMs (watched every stallMs / 4), then a move and its replay, or new sockets and a subscribe timeout (2 s). */
const RECOVERY_MS = 8 * STALL_MS;

let closers: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const close of closers.reverse()) await close();
  closers = [];
});

async function behindRelays(nodes: number): Promise<{ devnet: LockstepDevnet; relays: SubscribeHoldRelay[]; evmux: TestGateway; client: StreamClient }> {
  const devnet = await LockstepDevnet.start({ nodes, blockTimeMs: BLOCK_TIME_MS });
  closers.push(() => devnet.close());
  const relays = await Promise.all(devnet.nodes.map((node) => SubscribeHoldRelay.start(node.wsUrl)));
  closers.push(() => Promise.all(relays.map((relay) => relay.close())).then(() => undefined));
  const evmux = await startGateway(
    relays.map((relay, i) => ({ name: `node${i}`, url: relay.url })),
    { health: { stallMs: STALL_MS } },
    { logLevel: process.env.EVMUX_TEST_LOG_LEVEL ?? 'warn' },
  );
  closers.push(() => evmux.close());
  const client = await StreamClient.open(evmux.wsUrl, 'wallet');
  closers.push(async () => client.close());
  return { devnet, relays, evmux, client };
}

/** Heads reach a height mined after the fault, and every one came once, none skipped. */
async function assertHeadsFlow(devnet: LockstepDevnet, client: StreamClient, id: string): Promise<void> {
  const target = BigInt(devnet.blockNumber) + 3n;
  await waitUntil(`heads through evmux up to ${target}`, () => client.tip(id) >= target, RECOVERY_MS);
  const heads = client.heads(id);
  const tip = client.tip(id);
  assert.deepEqual(headProblems(heads, await canonicalHashes(devnet.nodes[0]!.httpUrl, heads[0]!.number, tip), tip, 'unchecked'), []);
}

test('sessions on a node whose new stream socket holds every eth_subscribe move to another node, without a gap', async () => {
  const { devnet, relays, evmux, client } = await behindRelays(2);
  const id = await client.subscribe(['newHeads']);
  await client.first(id);
  const home = pinnedUpstream((await evmux.get('/status')).body)!;
  const relay = relays[Number(home.slice('node'.length))]!;
  // Every socket made to it from now on holds eth_subscribe; its call sockets made before stay fine.
  relay.holding = true;
  relay.cutStreamSockets();
  // The socket's reconnect backoff, longer on a loaded machine: not what is tested.
  await waitUntil('premise: the stream made again on a socket that holds it', () => relay.held > 0, 15_000);
  await assertHeadsFlow(devnet, client, id);
  assert.ok(evmux.logs.some((line) => line['msg'] === 'newHeads stream silent while the chain moves: failing its subscriptions over'));
});

test('a stream whose only upstream URL put every new socket on a backend that holds eth_subscribe is made on a new socket', async () => {
  const { devnet, relays, evmux, client } = await behindRelays(1);
  const relay = relays[0]!;
  const id = await client.subscribe(['newHeads']);
  await client.first(id);
  relay.holding = true;
  relay.cut();
  await waitUntil('premise: the stream made again on a socket that holds it', () => relay.held > 0, 5000);
  // The backends are fine again for sockets made from now on: the one evmux holds is not.
  relay.holding = false;
  await assertHeadsFlow(devnet, client, id);
  assert.ok(evmux.logs.some((line) => line['msg'] === 'newHeads stream still silent while the chain moves: reconnecting its socket'));
});
