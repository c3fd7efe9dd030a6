/** `npm start` with no arguments: a 3-node lockstep anvil devnet mining every second, evmux in front. */
import type { Config } from './config/schema.js';
import type { LockstepDevnet } from './devnet/lockstep-devnet.js';
import type { Logger } from './log.js';
import { listenAddress } from './server/listen-error.js';

export interface Demo {
  devnet: LockstepDevnet;
  upstreams: Array<{ name: string; url: string }>;
}

/** The devnet (anvil, viem's accounts) is loaded only for the demo, not at every start. */
export async function startDemoDevnet(logger: Logger): Promise<Demo> {
  const { LockstepDevnet } = await import('./devnet/lockstep-devnet.js');
  // Gossip: what a user sends through evmux lands on one node; every node must mine it.
  const devnet = await LockstepDevnet.start({ nodes: 3, blockTimeMs: 1000, traffic: true, gossip: true, logger });
  return { devnet, upstreams: devnet.nodes.map((node) => ({ name: node.name, url: node.wsUrl })) };
}

export function demoBanner(config: Config, port: number, devnet: LockstepDevnet, adminPort?: number): string {
  const client = listenAddress(config.host, port);
  // With admin.port, /status and /metrics are only on the admin listener.
  const admin = adminPort === undefined ? client : listenAddress(config.admin.host, adminPort);
  return [
    '',
    'evmux demo: 3 anvil nodes in lockstep, a block every second, evmux in front',
    `  WebSocket JSON-RPC  ws://${client}/`,
    `  HTTP JSON-RPC       http://${client}/`,
    `  status              http://${admin}/status`,
    `  metrics             http://${admin}/metrics`,
    `  nodes               ${devnet.nodes.map((node) => node.wsUrl).join('  ')}`,
    `  event emitter       ${devnet.emitterAddress} (topic0 ${devnet.emitterTopic})`,
    '',
    `try: curl -s -XPOST http://${client}/ -H 'content-type: application/json' -d '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}'`,
    `     npx wscat -c ws://${client}/ then {"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}`,
    '',
  ].join('\n');
}
