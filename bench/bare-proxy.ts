// The Node floor for calls: the least a Node gateway built from evmux's parts can do per call.
// uWebSockets.js in front (WebSocket and HTTP POST), one `ws` socket to the node, the client's id
// swapped for a proxy id on the way in and back on the way out (found with indexOf; nothing is
// JSON-parsed). No validation, routing, retries, timeouts, limits or metrics. The latency it adds
// over direct is what any Node process pays in the benchmark's placement; evmux's distance from it
// is evmux's own cost. Like evmux, it puts its helper threads at idle CPU priority when it may run
// on one CPU only (src/runtime/helper-threads.ts), so that difference stays evmux's own too.
//
// With --upstream-client lean the node socket is the load generators' lean client (lean-ws-client.ts:
// node:net, frame headers parsed by hand, no stream machinery on reads) instead of `ws`: what the
// uWebSockets.js front end and an id swap cost with the least possible node side (run-all's
// `lean-floor` peer).
//
//   node dist/bench/bare-proxy.js --upstream ws://127.0.0.1:PORT [--upstream-client ws|lean]
//                                 [--port 0] [--max-seconds 900]
import uWS from '@trufflesuite/uws-js-unofficial';
import WebSocket from 'ws';
import { applyHelperThreadPriority } from '../src/runtime/helper-threads.js';
import { rawValueBounds } from './json-scan.js';
import { LeanWsClient } from './lean-ws-client.js';
import { SERVER_OPTIONS, listenUws } from './tool-server.js';
import { toolArgs } from './tool-args.js';

const args = toolArgs(import.meta.url, {
  ...SERVER_OPTIONS,
  upstream: { type: 'string' },
  'upstream-client': { type: 'string', default: 'ws' },
});
if (args.upstream === undefined) throw new Error('--upstream ws://host:port is required');
const upstreamClient = args['upstream-client'];
if (upstreamClient !== 'ws' && upstreamClient !== 'lean') throw new Error(`--upstream-client must be ws or lean, got ${upstreamClient}`);

/**
 * A call waiting for the node: where the answer goes and the id the caller used. Always created with
 * every field (one shape): an object spread here gave each call new hidden-class work and kept calls
 * alive through scavenges.
 */
interface Waiting {
  clientId: string;
  ws: uWS.WebSocket<unknown> | undefined;
  res: uWS.HttpResponse | undefined;
  aborted: boolean;
}
// Proxy ids rise by one; a ring indexed by their low bits (far more slots than calls in flight).
const RING = 1 << 16;
const waiting: Array<Waiting | undefined> = new Array<Waiting | undefined>(RING).fill(undefined);
let nextId = 0;

/** The socket to the node, whichever client holds it. */
interface Upstream {
  send(text: string): void;
  stop(): void;
}

function upstreamClosed(): never {
  process.stderr.write('bare-proxy: upstream closed\n');
  process.exit(1);
}

async function connectWs(url: string): Promise<Upstream> {
  const socket = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true });
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  socket.on('close', upstreamClosed);
  socket.on('message', answer);
  return { send: (text) => socket.send(text), stop: () => socket.terminate() };
}

async function connectLean(url: string): Promise<Upstream> {
  const { hostname, port, pathname } = new URL(url);
  const client = await LeanWsClient.connect({ host: hostname, port: Number(port), path: pathname, onMessage: answer, onClose: upstreamClosed });
  return { send: (text) => client.send(text), stop: () => client.destroy() };
}

const upstream = await (upstreamClient === 'lean' ? connectLean : connectWs)(args.upstream);

/** Forward one request with its id replaced; false when it has no id to swap. */
function forward(text: string, entry: Waiting): boolean {
  const bounds = rawValueBounds(Buffer.from(text), 'id');
  if (bounds === undefined) return false;
  const [start, end] = bounds;
  const id = nextId++;
  entry.clientId = text.slice(start, end);
  waiting[id & (RING - 1)] = entry;
  upstream.send(`${text.slice(0, start)}${id}${text.slice(end)}`);
  return true;
}

/** The node's answer `data` to its caller, under the caller's id (`data` is only read during the call). */
function answer(data: Buffer): void {
  const bounds = rawValueBounds(data, 'id');
  if (bounds === undefined) return;
  const slot = Number(data.toString('latin1', bounds[0], bounds[1])) & (RING - 1);
  const entry = waiting[slot];
  waiting[slot] = undefined;
  if (entry === undefined || entry.aborted) return;
  const out = Buffer.concat([data.subarray(0, bounds[0]), Buffer.from(entry.clientId), data.subarray(bounds[1])]);
  const { ws, res } = entry;
  if (ws !== undefined) ws.cork(() => ws.send(out, false));
  else res?.cork(() => res.writeHeader('content-type', 'application/json').end(out));
}

const app = uWS.App();
app.ws('/*', {
  compression: uWS.DISABLED,
  maxPayloadLength: 1024 * 1024,
  idleTimeout: 0,
  message: (ws, message) => {
    const text = Buffer.from(message).toString();
    if (!forward(text, { clientId: '', ws, res: undefined, aborted: false })) ws.send('{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"bare proxy needs an id"}}', false);
  },
  close: (ws) => {
    for (const entry of waiting) if (entry?.ws === ws) entry.aborted = true;
  },
});
app.post('/*', (res) => {
  const entry: Waiting = { clientId: '', ws: undefined, res, aborted: false };
  res.onAborted(() => {
    entry.aborted = true;
  });
  let body: Buffer | undefined;
  res.onData((chunk, last) => {
    const piece = Buffer.from(chunk);
    body = body === undefined ? Buffer.from(piece) : Buffer.concat([body, piece]);
    if (!last) return;
    if (!forward(body.toString(), entry)) res.writeStatus('400 Bad Request').end('bare proxy needs an id');
  });
});

await applyHelperThreadPriority('auto');
listenUws(app, 'bare-proxy', args, () => ({ stop: () => upstream.stop() }));
