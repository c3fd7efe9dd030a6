/**
 * limits.maxInstalledFiltersPerIp: one address's filters (each lives on a node, which keeps what it
 * matches until polled) are bounded over HTTP and WebSocket together; past the limit a new one is
 * refused with -32005 naming the limit, and one uninstalled makes room again.
 */
import assert from 'node:assert/strict';
import { after, before, test, type TestContext } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { rpcAnswer } from '../support/node-rpc.js';
import { Probe } from '../support/ws-probe.js';

const LIMIT = 3;

let devnet: LockstepDevnet;
let evmux: TestGateway;

before(async () => {
  devnet = await LockstepDevnet.start({ nodes: 2, blockTimeMs: 0 });
  evmux = await startGateway(
    devnet.nodes.map((node) => node.wsUrl),
    { limits: { maxInstalledFiltersPerIp: LIMIT } },
    { logLevel: 'warn' },
  );
});

after(async () => {
  await evmux?.close();
  await devnet?.close();
});

async function httpCall(method: string, params: unknown[]): Promise<Record<string, unknown>> {
  return (await rpcAnswer(evmux.httpUrl, method, params)) as Record<string, unknown>;
}

test('one address holds at most limits.maxInstalledFiltersPerIp filters over HTTP and WebSocket; uninstalling one makes room', async (t: TestContext) => {
  const probe = await Probe.open(evmux.wsUrl, t);
  const made = [
    await httpCall('eth_newFilter', [{ address: devnet.emitterAddress }]),
    await probe.request('eth_newBlockFilter', []),
    await httpCall('eth_newPendingTransactionFilter', []),
  ];
  const ids = made.map((reply) => {
    assert.equal(typeof reply['result'], 'string', `a filter within the limit is made: ${JSON.stringify(reply)}`);
    return reply['result'] as string;
  });

  for (const refused of [await httpCall('eth_newBlockFilter', []), await probe.request('eth_newFilter', [{}])]) {
    const error = refused['error'] as { code: number; message: string } | undefined;
    assert.equal(error?.code, -32005, `past the limit: ${JSON.stringify(refused)}`);
    assert.match(error.message, /too many installed filters from 127\.0\.0\.1: at most 3 \(limits\.maxInstalledFiltersPerIp\)/);
  }
  assert.equal(await evmux.metric('evmux_client_rejections_total', { reason: 'installed_filters_per_ip' }), 2);
  // The filters made are untouched by the refusals.
  assert.deepEqual((await httpCall('eth_getFilterChanges', [ids[1]]))['result'], []);

  assert.equal((await probe.request('eth_uninstallFilter', [ids[0]]))['result'], true);
  const again = await httpCall('eth_newBlockFilter', []);
  assert.equal(typeof again['result'], 'string', `room again after an uninstall: ${JSON.stringify(again)}`);
  const status = JSON.parse((await evmux.get('/status')).body) as { filters: number };
  assert.equal(status.filters, LIMIT);
});

test('a burst of filters from one address all in flight at once: no more than the limit are made', async () => {
  const gateway = await startGateway(
    devnet.nodes.map((node) => node.wsUrl),
    { limits: { maxInstalledFiltersPerIp: LIMIT } },
    { logLevel: 'warn' },
  );
  try {
    const burst = await Promise.all(
      Array.from({ length: 12 }, async (_, index) => {
        const response = await fetch(gateway.httpUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ jsonrpc: '2.0', id: index, method: 'eth_newBlockFilter', params: [] }),
        });
        return (await response.json()) as { result?: string; error?: { code: number } };
      }),
    );
    assert.equal(burst.filter((reply) => typeof reply.result === 'string').length, LIMIT, JSON.stringify(burst));
    assert.ok(burst.every((reply) => reply.result !== undefined || reply.error?.code === -32005), JSON.stringify(burst));
  } finally {
    await gateway.close();
  }
});
