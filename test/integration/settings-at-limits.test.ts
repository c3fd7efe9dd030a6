/**
 * Settings at the largest values the schema takes still work as they say: each alone is within
 * Node's timer limit (2^31 - 1 ms), but a deadline made of two of them was not, and a timer past
 * the limit fires after 1 ms. Real anvil nodes, a few milliseconds away behind a relay.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { DelayRelay } from '../support/delay-relay.js';
import { startGateway } from '../support/gateway.js';
import { rpc } from '../support/node-rpc.js';

const MAX_SETTING = 2 ** 31 - 1;

test('heartbeat.intervalMs at its largest (pings as good as off): evmux connects to nodes 5 ms away and answers', async (t) => {
  const devnet = await LockstepDevnet.start({ nodes: 2, blockTimeMs: 0 });
  t.after(() => devnet.close());
  const relays = await Promise.all(devnet.nodes.map((node) => DelayRelay.start(node.port, 5)));
  t.after(() => Promise.all(relays.map((relay) => relay.close())));
  const evmux = await startGateway(
    relays.map((relay) => `ws://127.0.0.1:${relay.port}/`),
    { heartbeat: { intervalMs: MAX_SETTING, timeoutMs: 5000 } },
    { waitReady: false },
  );
  t.after(() => evmux.close());
  await evmux.gateway.waitUntilReady(5_000);
  assert.equal(await rpc<string>(evmux.httpUrl, 'eth_blockNumber', []), `0x${devnet.blockNumber.toString(16)}`);
  assert.equal(evmux.logs.filter((line) => String(line['reason'] ?? '').includes('handshake not completed')).length, 0, 'no connect attempt given up');
});
