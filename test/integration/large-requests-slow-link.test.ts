/**
 * A node behind a link slower than evmux writes to it, and one client sending large requests
 * (100 KB calls, many at once). evmux wrote them all at once: they piled up ahead of every other
 * client's calls, and of the pings and probes, so the heartbeat cut the socket under them and the
 * probes marked the node down, failing everyone's calls. Now at most upstreams[].maxBytesInFlight
 * of unanswered requests are on a socket (more wait in the fair queue, client by client), and a
 * ping or probe held up behind requests the node is answering is not taken for silence. Shown with
 * a real anvil node behind test/support/slow-link.ts, and heartbeat and probe deadlines shorter
 * than the requests take to cross the link.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { startGateway } from '../support/gateway.js';
import { SlowLink } from '../support/slow-link.js';
import { StreamClient, waitUntil } from '../support/stream-recorder.js';

const UP_BYTES_PER_SECOND = 1_000_000;
/** eth_call data of 50 KB: 100 KB of hex, ~0.1 s on the link */
const CALL_DATA = `0x${'ab'.repeat(50_000)}`;
const LARGE_AT_ONCE = 16;
const LOAD_MS = 3_000;
const MAX_BYTES_IN_FLIGHT = 256 * 1024;

let devnet: LockstepDevnet;
before(async () => {
  devnet = await LockstepDevnet.start({ nodes: 1, blockTimeMs: 0, traffic: false });
});
after(async () => {
  await devnet?.close();
});

test('large requests on a narrow link wait their turn: other clients are served and the node is neither cut nor marked down', async () => {
  const link = await SlowLink.start(devnet.nodes[0]!.port, { up: UP_BYTES_PER_SECOND });
  const evmux = await startGateway([{ name: 'node0', url: `ws://127.0.0.1:${link.port}`, maxBytesInFlight: MAX_BYTES_IN_FLIGHT }], {
    requestTimeoutMs: 15_000,
    heartbeat: { intervalMs: 200, timeoutMs: 300 },
    health: { probeIntervalMs: 250, probeTimeoutMs: 200, failureThreshold: 2 },
  });
  const large = await StreamClient.open(evmux.wsUrl, 'large requests');
  // Another address: calls wait their turn client by client, and a client is its address.
  const small = await StreamClient.open(evmux.wsUrl, 'small requests', '127.0.0.2');
  try {
    const until = Date.now() + LOAD_MS;
    const largeOutcomes: string[] = [];
    const loads = Array.from({ length: LARGE_AT_ONCE }, async () => {
      while (Date.now() < until) {
        const reply = await large.request('eth_call', [{ to: '0x00000000000000000000000000000000000e0e0e', data: CALL_DATA }, 'latest'], 20_000);
        largeOutcomes.push(reply.result === '0x' ? 'ok' : JSON.stringify(reply.error ?? reply.result).slice(0, 200));
      }
    });
    const smallOutcomes: string[] = [];
    const smallTimes: number[] = [];
    let mostQueued = 0;
    while (Date.now() < until) {
      mostQueued = Math.max(mostQueued, (await evmux.metric('evmux_upstream_queued', { upstream: 'node0' })) ?? 0);
      const started = Date.now();
      const reply = await small.request('eth_getBalance', ['0x0000000000000000000000000000000000000001', 'latest'], 20_000);
      smallTimes.push(Date.now() - started);
      smallOutcomes.push(typeof reply.result === 'string' ? 'ok' : JSON.stringify(reply.error).slice(0, 200));
      await sleep(100);
    }
    await Promise.all(loads);

    const failed = (outcomes: string[]): string[] => outcomes.filter((outcome) => outcome !== 'ok');
    assert.deepEqual(failed(smallOutcomes), [], 'every small call answered');
    assert.deepEqual(failed(largeOutcomes), [], 'every large call answered');
    // The large calls sent ~1 MB/s through the link the whole time: far more than one second's worth would have waited ahead of each small call.
    assert.ok(largeOutcomes.length >= 20, `${largeOutcomes.length} large calls answered`);
    const slowest = Math.max(...smallTimes);
    assert.ok(slowest < 1_500, `a small call waited behind at most ~maxBytesInFlight of large ones, not behind all of them: the slowest took ${slowest} ms`);
    const node0 = evmux.logs.filter((line) => line['upstream'] === 'node0');
    assert.deepEqual(
      node0.filter((line) => line['msg'] === 'terminating upstream socket' || line['msg'] === 'upstream down').map((line) => `${String(line['msg'])}: ${String(line['reason'])}`),
      [],
      'neither cut nor marked down while it worked through the requests',
    );
    assert.equal(await evmux.metric('evmux_upstream_up', { upstream: 'node0' }), 1);
    assert.ok(mostQueued > 0, 'calls waited in the queue for room');
    // A probe may be in flight at any moment: given back is zero within a moment.
    const load = async (): Promise<number[]> => {
      const node = JSON.parse((await evmux.get('/status')).body).upstreams[0];
      return [node.inFlight, node.bytesInFlight, node.queued];
    };
    await waitUntil('every slot, byte and place in the queue given back', async () => (await load()).every((value) => value === 0), 2_000).catch(async (error: Error) => {
      throw new Error(`${error.message}: in flight, bytes in flight, queued ${JSON.stringify(await load())}`);
    });
  } finally {
    large.close();
    small.close();
    await evmux.close();
    await link.close();
  }
});
