/**
 * A node answers a ping, and a probe, after what it is already sending. Behind a narrow link a
 * large answer therefore holds the pong and the probe's answer up for as long as it takes to
 * arrive. The heartbeat and the probes must take a message still arriving for a busy node, not a
 * dead one: counted as silence, evmux cut the socket under the answer on every retry (the client
 * got -32050 "socket closed" where the node alone answered) and marked the node down meanwhile.
 * Shown with a real anvil node behind test/support/slow-link.ts, and heartbeat and probe
 * deadlines far shorter than the answer's transfer time.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { SlowLink } from '../support/slow-link.js';
import { StreamClient } from '../support/stream-recorder.js';

const LINK_BYTES_PER_SECOND = 400_000;
/** eth_call of code (put in place by a state override) that returns this many zero bytes: 2 × as many hex digits, ~2 s on the link */
const ANSWER_BYTES = 400_000;
const RETURNER = '0x00000000000000000000000000000000000e0e0e';
const BIG_CALL = [{ to: RETURNER }, 'latest', { [RETURNER]: { code: `0x62${ANSWER_BYTES.toString(16).padStart(6, '0')}6000f3` } }];

let devnet: LockstepDevnet;
before(async () => {
  devnet = await LockstepDevnet.start({ nodes: 1, blockTimeMs: 0, traffic: false });
});
after(async () => {
  await devnet?.close();
});

/**
 * evmux in front of the devnet's node behind the narrow link, with heartbeat and probe deadlines far
 * shorter than an answer's transfer, and a client of it.
 */
async function behindNarrowLink(): Promise<{ evmux: TestGateway; client: StreamClient; close(): Promise<void> }> {
  const link = await SlowLink.start(devnet.nodes[0]!.port, { down: LINK_BYTES_PER_SECOND });
  const evmux = await startGateway([{ name: 'node0', url: `ws://127.0.0.1:${link.port}` }], {
    requestTimeoutMs: 15_000,
    heartbeat: { intervalMs: 200, timeoutMs: 300 },
    health: { probeIntervalMs: 250, probeTimeoutMs: 200, failureThreshold: 2 },
  });
  const client = await StreamClient.open(evmux.wsUrl, 'puller');
  return {
    evmux,
    client,
    close: async () => {
      client.close();
      await evmux.close();
      await link.close();
    },
  };
}

/** node0's socket cut, or the node marked down, as logged. */
const cutsAndDowns = (evmux: TestGateway): string[] =>
  evmux.logs
    .filter((line) => line['upstream'] === 'node0' && (line['msg'] === 'terminating upstream socket' || line['msg'] === 'upstream down'))
    .map((line) => `${String(line['msg'])}: ${String(line['reason'])}`);

test('a large answer on a narrow link is not taken for a dead node: heartbeat and probes wait behind it', async () => {
  const { evmux, client, close } = await behindNarrowLink();
  try {
    const started = Date.now();
    const reply = await client.request('eth_call', BIG_CALL, 20_000);
    const tookMs = Date.now() - started;
    assert.equal(typeof reply.result, 'string', `the large answer, not an error: ${JSON.stringify(reply).slice(0, 300)}`);
    assert.equal((reply.result as string).length, 2 + 2 * ANSWER_BYTES);
    // Far longer than a pong or a probe may take, so the deadlines did come due during the transfer.
    assert.ok(tookMs > 1_000, `the answer took ${tookMs} ms`);
    assert.deepEqual(
      cutsAndDowns(evmux),
      [],
      'neither cut nor marked down while the answer arrived',
    );
    assert.equal(await evmux.metric('evmux_upstream_up', { upstream: 'node0' }), 1);
  } finally {
    await close();
  }
});

test('answers queued one behind another on a narrow link: the node is not taken for dead between them', async () => {
  const { evmux, client, close } = await behindNarrowLink();
  try {
    const started = Date.now();
    // Three at once: the node sends them one after another, ~2 s each, the pongs behind them.
    const replies = await Promise.all([0, 1, 2].map(() => client.request('eth_call', BIG_CALL, 20_000)));
    const tookMs = Date.now() - started;
    assert.deepEqual(replies.map((reply) => (typeof reply.result === 'string' ? reply.result.length : JSON.stringify(reply).slice(0, 200))), replies.map(() => 2 + 2 * ANSWER_BYTES));
    assert.deepEqual(
      cutsAndDowns(evmux),
      [],
      'neither cut nor marked down between the answers',
    );
    // Each answer crossed the link once: a cut would send the rest again from the start.
    assert.ok(tookMs < 4 * (2 * ANSWER_BYTES * 1000) / LINK_BYTES_PER_SECOND, `the three answers took ${tookMs} ms`);
  } finally {
    await close();
  }
});
