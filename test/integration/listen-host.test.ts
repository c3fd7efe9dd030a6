/**
 * A listen address written as a URL writes an IPv6 one (`--host [::1]`) listens there; before, it
 * was taken as a name no machine has and refused as "in use".
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { startGateway } from '../support/gateway.js';
import { rpcAnswer } from '../support/node-rpc.js';
import { Probe } from '../support/ws-probe.js';

let devnet: LockstepDevnet;

before(async () => {
  devnet = await LockstepDevnet.start({ nodes: 1, blockTimeMs: 0 });
});

after(() => devnet?.close());

test('host "[::1]": evmux listens on the IPv6 loopback and answers over HTTP and WebSocket', async (t) => {
  const evmux = await startGateway([devnet.nodes[0]!.wsUrl], { host: '[::1]' }, { logLevel: 'warn' });
  t.after(() => evmux.close());
  assert.match(evmux.httpUrl, /^http:\/\/\[::1\]:\d+\/$/);
  assert.deepEqual(await rpcAnswer(evmux.httpUrl, 'eth_chainId', []), { result: '0x7a69' });
  const probe = await Probe.open(evmux.wsUrl, t);
  assert.match(String(await probe.call('eth_blockNumber')), /^0x[0-9a-f]+$/);
});
