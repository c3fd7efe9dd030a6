// The peers that instructions.ts and garbage.ts measure one at a time in front of a fake node:
// their command lines, and waiting until one answers (under valgrind it starts some 50-fold slower).
import { nodeArgs, toolPath } from './children.js';
import { sleep } from './process-util.js';

export const COUNTED_PEERS = ['evmux', 'floor', 'lean-floor', 'pipe'] as const;
export type CountedPeer = (typeof COUNTED_PEERS)[number];

/** The young generation evmux's own command line gives it (see peers.ts findEvmux), for every peer alike. */
export const PEER_V8_FLAGS: readonly string[] = ['--max-semi-space-size=32', '--min-semi-space-size=32'];

/** The flags both tools take (toolArgs options): which peer, over what, and for how long. */
export const COUNTED_PEER_FLAGS = {
  peer: { type: 'string', default: 'evmux' },
  transport: { type: 'string', default: 'ws' },
  method: { type: 'string', default: 'small' },
  'warmup-s': { type: 'string' },
  'measure-s': { type: 'string' },
  entry: { type: 'string', default: 'dist/src/cli.js' },
} as const;

export function countedTransport(value: string): 'ws' | 'http' {
  if (value !== 'ws' && value !== 'http') throw new Error(`--transport must be ws or http, got ${value}`);
  return value;
}

export function countedPeer(value: string): CountedPeer {
  const peer = COUNTED_PEERS.find((p) => p === value);
  if (peer === undefined) throw new Error(`--peer must be ${COUNTED_PEERS.join(', ')}; got ${value}`);
  return peer;
}

/** Node arguments (after the V8 flags) that run `peer` on `port` in front of the node on `nodePort`. */
export function peerProgram(peer: CountedPeer, port: number, nodePort: number, entry: string): string[] {
  const upstream = `ws://127.0.0.1:${nodePort}`;
  switch (peer) {
    case 'evmux':
      return [...nodeArgs(entry), '--host', '127.0.0.1', '--port', String(port), '--upstream', `node=${upstream}`, '--log-level', 'warn'];
    case 'floor':
      return [...nodeArgs(toolPath('bare-proxy')), '--port', String(port), '--upstream', upstream];
    case 'lean-floor':
      return [...nodeArgs(toolPath('bare-proxy')), '--port', String(port), '--upstream', upstream, '--upstream-client', 'lean'];
    case 'pipe':
      return [...nodeArgs(toolPath('node-pipe')), '--port', String(port), '--upstream-port', String(nodePort)];
  }
}

/** Wait until the peer answers a call over HTTP; `alive` says whether its process still runs. */
export async function untilAnswering(url: string, timeoutMs: number, alive: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const httpUrl = url.replace(/^ws:/, 'http:');
  while (Date.now() < deadline) {
    const died = alive();
    if (died !== undefined) throw new Error(died);
    try {
      const response = await fetch(httpUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"jsonrpc":"2.0","id":1,"method":"net_version","params":[]}',
        signal: AbortSignal.timeout(5000),
      });
      if (response.ok && (await response.text()).includes('"result"')) return;
    } catch {
      // not listening yet
    }
    await sleep(250);
  }
  throw new Error(`the peer did not answer within ${timeoutMs} ms`);
}
