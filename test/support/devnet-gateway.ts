/**
 * For a test file: a lockstep anvil devnet that mines only when told, with evmux in front of it,
 * started before the file's tests and closed after them. The fields are set once `before` has run.
 */
import { after, before } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { startGateway, type TestGateway } from './gateway.js';
import { waitUntil } from './stream-recorder.js';

export interface DevnetGateway {
  devnet: LockstepDevnet;
  evmux: TestGateway;
}

/** `config`: evmux settings over the tests' defaults; `traffic: false`: blocks hold only what the test queues. */
export function devnetGatewayForFile(nodes: number, options: { config?: Parameters<typeof startGateway>[1]; traffic?: boolean } = {}): DevnetGateway {
  const fixture = {} as DevnetGateway;
  before(async () => {
    fixture.devnet = await LockstepDevnet.start({ nodes, blockTimeMs: 0, ...(options.traffic !== undefined && { traffic: options.traffic }) });
    fixture.evmux = await startGateway(
      fixture.devnet.nodes.map((node) => node.wsUrl),
      options.config,
    );
    // Ready means one node usable; the others follow within a probe. A test that subscribed before
    // they did saw its session move to its own node a moment later (a failover it did not cause).
    await waitUntil(
      'every node usable',
      async () => (JSON.parse((await fixture.evmux.get('/readyz')).body) as { usableUpstreams: number }).usableUpstreams === nodes,
      15_000,
    );
  });
  after(async () => {
    await fixture.evmux?.close();
    await fixture.devnet?.close();
  });
  return fixture;
}
