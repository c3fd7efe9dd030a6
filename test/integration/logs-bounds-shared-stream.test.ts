/**
 * Logs subscriptions that differ only in fromBlock and toBlock (web3.js passes its fromBlock on to
 * eth_subscribe) are one filter on the node: one eth_subscribe carries them all, and they take one
 * place under subscriptions.maxLogFiltersPerUpstream. Each client still gets the logs of its own
 * blocks only. Checked against anvil.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { startGateway } from '../support/gateway.js';
import { canonicalLogs } from '../support/node-rpc.js';
import { sleep, StreamClient, waitUntil, type LogNote } from '../support/stream-recorder.js';

const hex = (n: number): string => `0x${n.toString(16)}`;
const position = (log: LogNote): string => `${log.blockNumber}/${log.logIndex}/${log.blockHash}/${log.removed}`;

test('logs subscriptions to one filter with other block numbers share one upstream eth_subscribe and one place under maxLogFiltersPerUpstream; each gets its own blocks', { timeout: 60_000 }, async (t) => {
  const devnet = await LockstepDevnet.start({ nodes: 1, blockTimeMs: 0, traffic: true });
  t.after(() => devnet.close());
  const evmux = await startGateway([devnet.nodes[0]!.wsUrl], { subscriptions: { maxLogFiltersPerUpstream: 1 } });
  t.after(() => evmux.close());
  await devnet.mine(4);
  const head = devnet.blockNumber;
  const address = devnet.emitterAddress;
  // Each as a web3.js client of its own would send it; [from, to] of the blocks whose logs it is due.
  const filters: Record<string, { filter: Record<string, unknown>; from: number; to: number }> = {
    unbounded: { filter: { address }, from: head + 1, to: Infinity },
    pastFrom: { filter: { address, fromBlock: '0x1' }, from: head + 1, to: Infinity },
    pastTo: { filter: { address, toBlock: '0x2' }, from: head + 1, to: 2 },
    ahead: { filter: { address, fromBlock: hex(head + 3) }, from: head + 3, to: Infinity },
    range: { filter: { address, fromBlock: hex(head + 2), toBlock: hex(head + 4) }, from: head + 2, to: head + 4 },
  };
  const ids = new Map<string, { client: StreamClient; id: string }>();
  for (const [name, { filter }] of Object.entries(filters)) {
    const client = await StreamClient.open(evmux.wsUrl, name);
    t.after(() => client.close());
    ids.set(name, { client, id: await client.subscribe(['logs', filter]) });
  }
  const other = await StreamClient.open(evmux.wsUrl, 'other');
  t.after(() => other.close());
  const refused = await other.request('eth_subscribe', ['logs', { address: `0x${'1'.repeat(40)}` }]);
  assert.equal((refused['error'] as { code: number } | undefined)?.code, -32005, 'another filter is one past the cap');

  assert.equal(await evmux.metric('evmux_upstream_subscriptions', { upstream: 'node0', kind: 'logs' }), 1);
  const status = JSON.parse((await evmux.get('/status')).body) as { upstreams: Array<{ subscriptions: { kinds: Record<string, unknown>; streams: Array<{ kind: string; users: number }> } }> };
  const subscriptions = status.upstreams[0]!.subscriptions;
  assert.deepEqual(subscriptions.kinds['logs'], { topics: 5, clients: 5, streams: 1 });
  assert.deepEqual(
    subscriptions.streams.filter((stream) => stream.kind === 'logs').map((stream) => stream.users),
    [5],
    'one stream, each bounded topic a user of it',
  );

  await sleep(300);
  for (let i = 0; i < 6; i++) await devnet.mine(1);
  const end = devnet.blockNumber;
  const unbounded = ids.get('unbounded')!;
  await waitUntil('the unbounded stream at the head', () => unbounded.client.logs(unbounded.id).at(-1)?.blockNumber === BigInt(end), 10_000);
  await sleep(300);

  for (const [name, { from, to }] of Object.entries(filters)) {
    const last = Math.min(to, end);
    const want = from > last ? [] : await canonicalLogs(devnet.nodes[0]!.httpUrl, { address }, BigInt(from), BigInt(last));
    if (from <= last) assert.ok(want.length > 0, `${name}: the emitter logged in blocks ${from}..${last}`);
    const { client, id } = ids.get(name)!;
    assert.deepEqual(client.logs(id).map(position), want.map(position), name);
  }
});
