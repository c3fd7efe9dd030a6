/**
 * upstreams[].maxBytesInFlight counts the request bytes the node may not have read yet, and calls
 * past it wait their turn. Two ways it went wrong, each shown with a real anvil node:
 * - A large request the node takes long to run held every other client's calls back for as long as
 *   it ran, on a fast link: its bytes counted until its answer. The node has read a request once it
 *   answers a later one, or pongs a ping sent after it.
 * - An answer over limits.maxAnswerBytes closing a socket that had no room: the calls waiting were
 *   let go onto the socket as it closed, failed as "not connected", and opened the breaker.
 */
import assert from 'node:assert/strict';
import { after, before, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { startGateway } from '../support/gateway.js';
import { SlowLink } from '../support/slow-link.js';
import { StreamClient } from '../support/stream-recorder.js';

const BALANCE = ['0x0000000000000000000000000000000000000001', 'latest'];
/** Calls made by another client (calls wait their turn client by client, and a client is its address). */
const OTHER_CLIENT = '127.0.0.2';

let devnet: LockstepDevnet;
before(async () => {
  devnet = await LockstepDevnet.start({ nodes: 1, blockTimeMs: 0, traffic: false });
});
after(async () => {
  await devnet?.close();
});

/** A client named `label`, and another from OTHER_CLIENT, both closed after the test. */
async function twoClients(t: TestContext, url: string, label: string): Promise<[StreamClient, StreamClient]> {
  const first = await StreamClient.open(url, label);
  const other = await StreamClient.open(url, 'other', OTHER_CLIENT);
  t.after(() => {
    first.close();
    other.close();
  });
  return [first, other];
}

/** Each of `count` calls made `gapMs` apart: its outcome ('ok' or the error) and how long it took. */
async function spacedCalls(client: StreamClient, count: number, gapMs: number): Promise<Array<{ outcome: string; ms: number }>> {
  return Promise.all(
    Array.from({ length: count }, async (_, index) => {
      await sleep(index * gapMs);
      const started = Date.now();
      const reply = await client.request('eth_getBalance', BALANCE, 20_000);
      return { outcome: typeof reply.result === 'string' ? 'ok' : JSON.stringify(reply.error).slice(0, 200), ms: Date.now() - started };
    }),
  );
}

test('a large request the node is slow to run holds no other client back once the node has read it', async (t) => {
  const evmux = await startGateway([{ name: 'node0', url: devnet.nodes[0]!.wsUrl }], { requestTimeoutMs: 20_000 });
  t.after(() => evmux.close());
  const [large, other] = await twoClients(t, evmux.wsUrl, 'large and slow');
  // 1.2 MB of hex, over the default 1 MiB, to code that counts down from 0x05000000 (seconds of work).
  const LOOPER = '0x00000000000000000000000000000000000000aa';
  const started = Date.now();
  const slow = large.request('eth_call', [{ to: LOOPER, data: `0x${'ab'.repeat(600_000)}`, gas: '0xe8d4a51000' }, 'latest', { [LOOPER]: { code: '0x63050000005b600190038060055700' } }], 20_000);
  await sleep(200);
  const others = await spacedCalls(other, 5, 50);
  const reply = await slow;
  const slowMs = Date.now() - started;

  assert.equal(reply.result, '0x', `the slow call's answer: ${JSON.stringify(reply).slice(0, 200)}`);
  assert.ok(slowMs > 1_500, `the slow call ran ${slowMs} ms: long enough to tell`);
  assert.deepEqual(others.map((call) => call.outcome), ['ok', 'ok', 'ok', 'ok', 'ok']);
  const slowest = Math.max(...others.map((call) => call.ms));
  assert.ok(slowest < 1_000, `the other client's calls did not wait for the slow one (${slowMs} ms): the slowest took ${slowest} ms`);
});

test("an answer over limits.maxAnswerBytes on a socket with no room fails its own call only: the calls waiting go on the socket reopened", async (t) => {
  // 80 KB of request at 40 KB/s: the other client's calls wait for room meanwhile.
  const link = await SlowLink.start(devnet.nodes[0]!.port, { up: 40_000 });
  t.after(() => link.close());
  const evmux = await startGateway([{ name: 'node0', url: `ws://127.0.0.1:${link.port}`, maxBytesInFlight: 1024 }], {
    requestTimeoutMs: 10_000,
    limits: { maxAnswerBytes: 65_536 },
    heartbeat: { intervalMs: 1_000, timeoutMs: 3_000 },
    health: { probeIntervalMs: 500, probeTimeoutMs: 3_000 },
  });
  t.after(() => evmux.close());
  const [large, other] = await twoClients(t, evmux.wsUrl, 'oversized answer');
  // The identity precompile answers with what it is sent: 80 KB, over the 64 KiB limit.
  const oversized = large.request('eth_call', [{ to: '0x0000000000000000000000000000000000000004', data: `0x${'ab'.repeat(40_000)}` }, 'latest'], 20_000);
  await sleep(50);
  const others = await spacedCalls(other, 20, 10);
  const reply = await oversized;

  assert.match(JSON.stringify(reply.error), /larger than this gateway.s limit of 65536 bytes/, "the oversized answer fails its own call");
  assert.deepEqual(
    others.map((call) => call.outcome).filter((outcome) => outcome !== 'ok'),
    [],
    "every other client's call answered",
  );
  const node = JSON.parse((await evmux.get('/status')).body).upstreams[0];
  assert.deepEqual([node.healthy, node.breaker], [true, 'closed'], 'the node is not blamed for a close of evmux’s own');
});
