/**
 * Pending transactions around a subscription's move, on real anvil nodes (which do not pass
 * transactions on: each test hands one to a node itself, as gossip would) behind relays that cut
 * them. A transaction the client was sent by the node it left, announced again by the node it
 * moved to, is not sent twice: on a move back (the old node still streams) and on a failover.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { keccak256, type Hex } from 'viem';
import { DEV_PRIVATE_KEYS } from '../../src/devnet/dev-accounts.js';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { CutRelay } from '../support/cut-relay.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { rpc } from '../support/node-rpc.js';
import { signedTx } from '../support/signed-tx.js';
import { StreamClient, waitUntil } from '../support/stream-recorder.js';

let devnet: LockstepDevnet;
let relays: CutRelay[];
let evmux: TestGateway;

before(async () => {
  devnet = await LockstepDevnet.start({ nodes: 2, blockTimeMs: 0, traffic: false });
  relays = await Promise.all(devnet.nodes.map((node) => CutRelay.start(Number(new URL(node.wsUrl).port))));
  evmux = await startGateway(relays.map((relay) => `ws://127.0.0.1:${relay.port}`), {
    subscriptions: { holdDownMs: 1000 },
    reconnect: { baseMs: 50, maxMs: 200 },
  });
  await waitUntil('every node usable', async () => (JSON.parse((await evmux.get('/readyz')).body) as { usableUpstreams: number }).usableUpstreams === 2, 10_000);
});

after(async () => {
  await evmux?.close();
  await Promise.all((relays ?? []).map((relay) => relay.close()));
  await devnet?.close();
});

interface TopicStatus {
  kind: string;
  clients: number;
}

/** The index of the node whose pending-transactions topic holds clients, if one does. */
async function pendingHome(): Promise<number | undefined> {
  const { upstreams } = JSON.parse((await evmux.get('/status')).body) as { upstreams: Array<{ name: string; subscriptions: { topics: TopicStatus[] } }> };
  const home = upstreams.find((upstream) => upstream.subscriptions.topics.some((topic) => topic.kind === 'newPendingTransactions' && topic.clients > 0));
  return home === undefined ? undefined : Number(home.name.slice('node'.length));
}

async function sendTo(node: number, raw: Hex): Promise<void> {
  assert.equal(await rpc<string>(devnet.nodes[node]!.httpUrl, 'eth_sendRawTransaction', [raw]), keccak256(raw));
}

async function subscribePending(): Promise<{ client: StreamClient; reported: (hash: Hex) => number; home: number }> {
  const client = await StreamClient.open(evmux.wsUrl, 'wallet');
  const id = await client.subscribe(['newPendingTransactions']);
  const reported = (hash: Hex): number => client.notifications(id).filter((note) => (note.result as unknown) === hash).length;
  let home: number | undefined;
  await waitUntil('the subscription placed', async () => (home = await pendingHome()) !== undefined, 5_000);
  return { client, reported, home: home! };
}

test('a move back to a node that returned: a transaction the old node announced, announced by the returning node too, comes once', async () => {
  const { client, reported, home } = await subscribePending();
  const other = 1 - home;
  try {
    relays[home]!.cut(500);
    await waitUntil('failed over', async () => (await pendingHome()) === other, 5_000);
    await waitUntil('its node usable again', async () => (await evmux.metric('evmux_upstream_up', { upstream: `node${home}` })) === 1, 10_000);
    // Its sessions go back to it after holdDownMs (1 s), with the old node's stream feeding them
    // for a second more; the old node announces a transaction before that, the returning node after.
    const key = devnet.testAccountKey;
    const first = await signedTx(key, { nonce: 0 });
    await sendTo(other, first);
    await waitUntil('the old node announced it', () => reported(keccak256(first)) === 1, 1_000);
    await waitUntil('moved back', async () => (await pendingHome()) === home, 10_000);
    await sendTo(home, first);
    const next = await signedTx(key, { nonce: 1 });
    await sendTo(home, next);
    // The node announces in the order it took them: once the later one is here, so is any repeat.
    await waitUntil('the returning node announced the next one', () => reported(keccak256(next)) === 1, 5_000);
    assert.equal(reported(keccak256(first)), 1, 'announced by both nodes around the move, sent once');
  } finally {
    client.close();
  }
});

test('a failover: a transaction the dead node announced, announced by the new node after the move, comes once', async () => {
  const { client, reported, home } = await subscribePending();
  const other = 1 - home;
  try {
    const key = DEV_PRIVATE_KEYS[3];
    const first = await signedTx(key, { nonce: 0 });
    await sendTo(home, first);
    await waitUntil('its node announced it', () => reported(keccak256(first)) === 1, 5_000);
    relays[home]!.cut(30_000);
    await waitUntil('failed over', async () => (await pendingHome()) === other, 5_000);
    await sendTo(other, first);
    const next = await signedTx(key, { nonce: 1 });
    await sendTo(other, next);
    await waitUntil('the new node announced the next one', () => reported(keccak256(next)) === 1, 5_000);
    assert.equal(reported(keccak256(first)), 1, 'announced by both nodes, either side of the failover, sent once');
  } finally {
    client.close();
  }
});
