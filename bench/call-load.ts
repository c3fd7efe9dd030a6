// Call load generator: JSON-RPC calls over WebSocket or HTTP, latency in an HDR histogram,
// one JSON result line on stdout.
//
//   node dist/bench/call-load.js --url ws://127.0.0.1:8547/ --mode closed --conns 32 --inflight 8
//   node dist/bench/call-load.js --url http://127.0.0.1:8547/ --mode open --rate 5000
//   node dist/bench/call-load.js --url ws://127.0.0.1:8547/ --mode serial
//   node dist/bench/call-load.js --url ws://127.0.0.1:8547/ --mode open --trace /tmp/calls.txt
//
// Modes: closed = C connections × M requests in flight (HTTP/1.1 has one request in flight per
// connection, so HTTP opens C × M connections); open = a fixed arrival rate spread over C
// connections, sent from a busy loop for µs-accurate spacing, latency from the actual send time
// (intendedUs also reports it from the scheduled time); serial = one connection, one in flight.
// Prints one JSON result line (with --events also window-start / window-end lines before it).
// --trace FILE writes one line per measured call, "<send time ms into the window> <latency µs>",
// after a header line with the window's start on CLOCK_MONOTONIC in ms (process.hrtime, shared by
// every process on the machine, so events in the target can be lined up with the slow calls).
// Samples sit in a preallocated array: tracing adds no garbage to the generator.
// Methods: small = eth_getBalance (a tiny result no gateway can answer from its head tracker),
// block = eth_getBlockByNumber("latest") (~16 KB from the fake upstream), or any method name.
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { LeanHttpClient } from './lean-http-client.js';
import { LeanWsClient } from './lean-ws-client.js';
import { intValue } from './json-scan.js';
import { newHistogram, recordMs, summarize } from './latency.js';
import { emit, num, sleep } from './process-util.js';
import { toolArgs } from './tool-args.js';

const args = toolArgs(import.meta.url, {
  url: { type: 'string' },
  mode: { type: 'string', default: 'closed' },
  conns: { type: 'string' },
  inflight: { type: 'string' },
  rate: { type: 'string' },
  duration: { type: 'string' },
  warmup: { type: 'string' },
  method: { type: 'string', default: 'small' },
  params: { type: 'string' },
  label: { type: 'string' },
  events: { type: 'boolean', default: false },
  trace: { type: 'string' },
});

if (args.url === undefined) throw new Error('--url is required (ws://host:port/ or http://host:port/)');
const url = new URL(args.url);
const transport = url.protocol === 'ws:' ? 'ws' : url.protocol === 'http:' ? 'http' : undefined;
if (transport === undefined) throw new Error(`--url must be ws:// or http://, got ${args.url}`);
const mode = args.mode;
if (mode !== 'closed' && mode !== 'open' && mode !== 'serial') throw new Error('--mode is closed, open or serial');
const conns = mode === 'serial' ? 1 : num(args.conns, mode === 'open' ? (transport === 'ws' ? 4 : 32) : 32, 'conns');
const inflight = mode === 'closed' ? num(args.inflight, 8, 'inflight') : 1;
const rate = num(args.rate, 5000, 'rate');
const durationS = num(args.duration, 5, 'duration');
const warmupS = num(args.warmup, 1, 'warmup');

const PRESETS: Record<string, [string, string] | undefined> = {
  small: ['eth_getBalance', '["0x00000000000000000000000000000000000000aa","latest"]'],
  block: ['eth_getBlockByNumber', '["latest",false]'],
};
const [method, params] = PRESETS[args.method] ?? [args.method, args.params ?? '[]'];
const body = (id: number): string => `{"jsonrpc":"2.0","id":${id},"method":"${method}","params":${params}}`;

const hist = newHistogram();
const intendedHist = newHistogram();
// Replies are recorded from the first one on and the tallies reset when the window opens, so the
// reply path runs the same code before and inside the window. Switching recording on at the window
// start made V8 recompile that path there: a 3-4 ms stall ~90 ms into every window (seen with
// --trace), which delayed 10-40 calls of every peer.
const state = { measuring: true, running: true, completed: 0, errors: 0, httpErrors: 0, dropped: 0, bytesIn: 0, closed: 0 };
// A connection the target closes mid-run is counted (closed loops lose its slots).
const onClose = (): void => {
  if (state.running) state.closed++;
};
const ERROR_KEY = Buffer.from('"error"');

/** Send time and latency of each measured call, in pairs, for --trace. */
const TRACE_CAP = 1_000_000;
const trace = args.trace === undefined ? undefined : new Float64Array(2 * TRACE_CAP);
let traced = 0;
let windowStart = 0;
let windowStartMonotonicMs = 0;

function writeTrace(file: string, samples: Float64Array): void {
  const lines = [`# window start, CLOCK_MONOTONIC ms: ${windowStartMonotonicMs.toFixed(3)}`];
  for (let i = 0; i < traced; i++) lines.push(`${samples[2 * i]!.toFixed(3)} ${(samples[2 * i + 1]! * 1000).toFixed(1)}`);
  writeFileSync(file, lines.join('\n') + '\n');
}

function onReply(payload: Buffer, sentAt: number, intendedAt: number): void {
  const now = performance.now();
  if (!state.measuring) return;
  state.completed++;
  state.bytesIn += payload.length;
  if (payload.indexOf(ERROR_KEY) >= 0) state.errors++;
  recordMs(hist, now - sentAt);
  if (trace !== undefined && traced < TRACE_CAP) {
    trace[2 * traced] = sentAt - windowStart;
    trace[2 * traced + 1] = now - sentAt;
    traced++;
  }
  if (mode === 'open') recordMs(intendedHist, now - intendedAt);
}

// ---- WebSocket: ids index a ring of send times per connection --------------------------------
interface WsConn {
  client: LeanWsClient;
  nextId: number;
  sent: Float64Array;
  intended: Float64Array;
}
const RING = 1 << 16;

async function openWs(): Promise<WsConn[]> {
  const out: WsConn[] = [];
  for (let i = 0; i < conns; i++) {
    const conn: WsConn = { client: undefined as unknown as LeanWsClient, nextId: 0, sent: new Float64Array(RING), intended: new Float64Array(RING) };
    conn.client = await LeanWsClient.connect({
      host: url.hostname,
      port: Number(url.port),
      path: url.pathname,
      onMessage: (payload) => {
        const id = intValue(payload, 'id');
        if (id === undefined) return; // a notification or an id-less error
        const slot = id & (RING - 1);
        onReply(payload, conn.sent[slot] ?? 0, conn.intended[slot] ?? 0);
        if (mode !== 'open' && state.running) sendWs(conn, performance.now());
      },
      onClose,
    });
    out.push(conn);
  }
  return out;
}

function sendWs(conn: WsConn, intendedAt: number): void {
  const id = conn.nextId++;
  const slot = id & (RING - 1);
  conn.intended[slot] = intendedAt;
  conn.sent[slot] = performance.now();
  conn.client.send(body(id));
}

// ---- HTTP: one request in flight per connection, FIFO ---------------------------------------
interface HttpConn {
  client: LeanHttpClient;
  sentAt: number;
  intendedAt: number;
}
const idleHttp: HttpConn[] = [];
const httpBacklog: number[] = [];

async function openHttp(count: number): Promise<HttpConn[]> {
  const out: HttpConn[] = [];
  for (let i = 0; i < count; i++) {
    const conn: HttpConn = { client: undefined as unknown as LeanHttpClient, sentAt: 0, intendedAt: 0 };
    conn.client = await LeanHttpClient.connect({
      host: url.hostname,
      port: Number(url.port),
      path: url.pathname,
      onResponse: (status, payload) => {
        if (status !== 200 && state.measuring) state.httpErrors++;
        onReply(payload, conn.sentAt, conn.intendedAt);
        if (!state.running) return;
        if (mode !== 'open') sendHttp(conn, performance.now());
        else if (httpBacklog.length > 0) sendHttp(conn, httpBacklog.shift() ?? 0);
        else idleHttp.push(conn);
      },
      onClose,
    });
    out.push(conn);
  }
  return out;
}

let httpId = 0;
function sendHttp(conn: HttpConn, intendedAt: number): void {
  conn.intendedAt = intendedAt;
  conn.sentAt = performance.now();
  conn.client.post(body(httpId++));
}

// ---- open loop: a busy loop keeps the spacing at µs resolution ------------------------------
function startOpenLoop(send: (intendedAt: number) => void): void {
  const start = performance.now();
  const gap = 1000 / rate;
  let k = 0;
  const pump = (): void => {
    if (!state.running) return;
    const now = performance.now();
    const due = Math.floor((now - start) / gap);
    // More than a second behind: the target cannot keep up; count instead of flooding.
    if (due - k > rate) {
      state.dropped += due - k - rate;
      k = due - rate;
    }
    for (; k <= due; k++) send(start + k * gap);
    setImmediate(pump);
  };
  pump();
}

async function main(): Promise<void> {
  let closeAll: () => void;
  let sockets: number;
  if (transport === 'ws') {
    const list = await openWs();
    sockets = list.length;
    closeAll = () => list.forEach((c) => c.client.destroy());
    if (mode === 'open') {
      let rr = 0;
      startOpenLoop((at) => {
        const c = list[rr++ % list.length];
        if (c !== undefined) sendWs(c, at);
      });
    } else for (const c of list) for (let j = 0; j < inflight; j++) sendWs(c, performance.now());
  } else {
    const list = await openHttp(mode === 'closed' ? conns * inflight : conns);
    sockets = list.length;
    closeAll = () => list.forEach((c) => c.client.destroy());
    if (mode === 'open') {
      idleHttp.push(...list);
      startOpenLoop((at) => {
        const c = idleHttp.pop();
        if (c !== undefined) sendHttp(c, at);
        else if (httpBacklog.length < rate) httpBacklog.push(at);
        else state.dropped++;
      });
    } else for (const c of list) sendHttp(c, performance.now());
  }
  // With --events, window markers let run-all sample the target's CPU over the measured interval.
  // The first write to stdout sets the stream up (~0.5 ms); done here, not at the window start,
  // where it held back the calls due meanwhile and sent them as one burst.
  if (args.events) emit({ event: 'load-started', tool: 'call-load', sockets });
  await sleep(warmupS * 1000);
  if (args.events) emit({ event: 'window-start', tool: 'call-load' });
  hist.reset();
  intendedHist.reset();
  Object.assign(state, { completed: 0, errors: 0, httpErrors: 0, bytesIn: 0 });
  traced = 0;
  const t0 = performance.now();
  windowStart = t0;
  windowStartMonotonicMs = Number(process.hrtime.bigint()) / 1e6 - (performance.now() - t0);
  const cpuStart = process.cpuUsage();
  await sleep(durationS * 1000);
  state.measuring = false;
  state.running = false;
  if (args.events) emit({ event: 'window-end', tool: 'call-load' });
  const elapsedS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  await sleep(200);
  closeAll();
  if (trace !== undefined && args.trace !== undefined) writeTrace(args.trace, trace);
  emit({
    event: 'result',
    tool: 'call-load',
    label: args.label ?? null,
    url: args.url,
    transport,
    mode,
    method,
    conns,
    inflight,
    sockets,
    rate: mode === 'open' ? rate : null,
    warmupS,
    durationS: Math.round(elapsedS * 1000) / 1000,
    requests: state.completed,
    rps: Math.round(state.completed / elapsedS),
    errors: state.errors + state.httpErrors,
    dropped: state.dropped,
    connectionsClosedByTarget: state.closed,
    bytesIn: state.bytesIn,
    latency: summarize(hist),
    intendedLatency: mode === 'open' ? summarize(intendedHist) : null,
    // The load generator's own CPU in the window: near 100 % means it, not the target, limits.
    cpuMs: { user: Math.round(cpu.user / 1000), system: Math.round(cpu.system / 1000) },
  });
}

const hardStop = setTimeout(() => {
  process.stderr.write('call-load: hard deadline reached\n');
  process.exit(3);
}, (warmupS + durationS + 30) * 1000);
hardStop.unref();

main().then(
  () => process.exit(0),
  (err: unknown) => {
    // The target refusing or failing is a result, not a crash of this tool.
    const target = err instanceof Error && ('code' in err || err.message.startsWith('upgrade refused'));
    if (!target) throw err;
    emit({ event: 'result', tool: 'call-load', url: args.url, mode, error: err.message });
    process.exit(0);
  },
);
