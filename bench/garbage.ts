// Garbage per proxied call: the bytes a peer allocates per call, and where, by V8's sampling heap
// profiler with the objects that scavenges and mark-compacts collect counted in (a plain heap
// profile keeps only what is still alive). Scavenges come every (young generation ÷ garbage per
// call) calls and each stops the event loop for about a millisecond, so fewer bytes per call is
// fewer calls caught behind one. Like instructions.ts, the figure does not depend on what else the
// machine is doing: it is bytes, not time.
//
//   node dist/bench/garbage.js [--peer evmux|floor|lean-floor|pipe] [--transport ws|http] [--method small|block]
//                              [--warmup-s 5] [--measure-s 5] [--top 20] [--entry dist/src/cli.js]
//
// The peer runs with --inspect=127.0.0.1:0 in front of a fake node; call-load makes 2 x 1 calls in
// flight for the warm-up, sampling starts (one sample per 256 bytes allocated on average), the
// measured calls run, sampling stops. Prints one JSON line: bytes per call, and the allocation
// sites (function, file:line) with the most bytes per call. The sampled bytes are V8's estimate
// from its samples: repeat runs of one build agree within a few percent.
import WebSocket from 'ws';
import { Child, freePort, killAllChildren } from './children.js';
import { COUNTED_PEER_FLAGS, PEER_V8_FLAGS, countedPeer, countedTransport, peerProgram, untilAnswering } from './counted-peer.js';
import { startFakeUpstream, runTool } from './peers.js';
import { inspectorUrl } from './probe.js';
import { emit, num } from './process-util.js';
import { toolArgs } from './tool-args.js';

const args = toolArgs(import.meta.url, {
  ...COUNTED_PEER_FLAGS,
  top: { type: 'string' },
});
const peer = countedPeer(args.peer);
const transport = countedTransport(args.transport);
const warmupS = num(args['warmup-s'], 5, 'warmup-s');
const measureS = num(args['measure-s'], 5, 'measure-s');
const top = num(args.top, 20, 'top');

/** A node of V8's sampling heap profile (HeapProfiler.SamplingHeapProfileNode). */
interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

/** A Chrome DevTools Protocol session over the inspector's WebSocket (a profile runs to megabytes). */
class InspectorSession {
  #next = 1;
  readonly #waiting = new Map<number, { resolve: (result: unknown) => void; reject: (error: Error) => void }>();
  private constructor(private readonly socket: WebSocket) {
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as { id?: number; result?: unknown; error?: { message: string } };
      const waiter = message.id !== undefined ? this.#waiting.get(message.id) : undefined;
      if (waiter === undefined || message.id === undefined) return;
      this.#waiting.delete(message.id);
      if (message.error !== undefined) waiter.reject(new Error(message.error.message));
      else waiter.resolve(message.result);
    });
  }

  static async open(url: string): Promise<InspectorSession> {
    const socket = new WebSocket(url, { maxPayload: 1 << 30 });
    await new Promise<void>((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    return new InspectorSession(socket);
  }

  call(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      this.socket.send(JSON.stringify({ id, method, params }));
    });
  }

  close(): void {
    this.socket.close();
  }
}

const node = await startFakeUpstream({ intervalMs: 1000, genesisMs: Date.now() });
const port = await freePort();
const child = new Child(peer, process.execPath, ['--inspect=127.0.0.1:0', ...PEER_V8_FLAGS, ...peerProgram(peer, port, node.port, args.entry)], { maxSeconds: 300 });

try {
  const url = `${transport}://127.0.0.1:${port}/`;
  await untilAnswering(url, 30_000, () => (child.running ? undefined : `the peer exited:\n${child.stderrTail.slice(-1500)}`));
  const inspector = await inspectorUrl(child);
  if (inspector === undefined) throw new Error('the peer printed no inspector URL');
  const load = (seconds: number): Promise<Record<string, unknown>> =>
    runTool('call-load', ['--url', url, '--mode', 'closed', '--conns', '2', '--inflight', '1', '--method', args.method, '--duration', String(seconds), '--warmup', '0'], {
      cpu: undefined,
      timeoutMs: (seconds + 60) * 1000,
    });
  await load(warmupS);
  const session = await InspectorSession.open(inspector);
  await session.call('HeapProfiler.enable');
  await session.call('HeapProfiler.startSampling', { samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  const measured = await load(measureS);
  const { profile } = (await session.call('HeapProfiler.stopSampling')) as { profile: { head: ProfileNode } };
  session.close();
  const requests = Number(measured.requests);
  const sites = new Map<string, number>();
  let total = 0;
  const walk = (n: ProfileNode): void => {
    if (n.selfSize > 0) {
      total += n.selfSize;
      const file = n.callFrame.url.replace(/^.*\/(dist|node_modules)\//, '$1/');
      const site = `${n.callFrame.functionName || '(anonymous)'} ${file}:${n.callFrame.lineNumber + 1}`;
      sites.set(site, (sites.get(site) ?? 0) + n.selfSize);
    }
    for (const c of n.children) walk(c);
  };
  walk(profile.head);
  emit({
    event: 'result',
    tool: 'garbage',
    peer,
    transport,
    method: args.method,
    measureS,
    requests,
    bytesPerCall: Math.round(total / requests),
    // Native allocations show as "(V8 API)" (uWS's ArrayBuffers among them); builtins by their name with no file.
    topSitesPerCall: Object.fromEntries(
      [...sites]
        .sort((a, b) => b[1] - a[1])
        .slice(0, top)
        .map(([site, bytes]) => [site, Math.round(bytes / requests)]),
    ),
  });
} finally {
  await child.stop(2000);
  await node.child.stop(1000);
  killAllChildren();
}
