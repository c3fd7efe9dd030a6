// Fan-out load generator: N WebSocket clients in one process subscribe to newHeads and measure
// each notification's latency from the send time stamped in `extraData` (see chain.ts).
//
//   node dist/bench/fanout-load.js --url ws://127.0.0.1:8547/ --clients 10000 --duration 60
//     [--steps 1,10,100,1000] [--logs] [--stall-fraction 0.01] [--interactive]
//     [--sources K --source-base 2] [--connect-concurrency 200] [--settle-ms 1500]
//
// Phases, each announced as a JSON line on stdout: connected, subscribed (once per --steps
// entry and at N), logs-subscribed, settled, window-start, window-end, result. With --interactive
// the tool waits after each event for a stdin line {"ack":true}, so run-all can read the gateway's
// CPU, RSS and metrics at exactly that point, and open the windows of several generators at once
// (it holds each at `settled` until all are there). A stdin line {"mark":<µs monotonic>} sets the
// failover mark (the kill time). Stalled clients (--stall-fraction) pause their socket after
// subscribing, are left out of latency and loss figures, and are resumed at the end to see
// whether the server disconnected them.
import { performance } from 'node:perf_hooks';
import { LeanWsClient } from './lean-ws-client.js';
import { hexValue, intValue } from './json-scan.js';
import { FanoutState, nowUs } from './fanout-state.js';
import { GcPauses } from './gc-pauses.js';
import { emit, num, onStdinLines, sleep, stdinIsPipe } from './process-util.js';
import { toolArgs } from './tool-args.js';

const args = toolArgs(import.meta.url, {
  url: { type: 'string' },
  clients: { type: 'string' },
  duration: { type: 'string' },
  steps: { type: 'string' },
  logs: { type: 'boolean', default: false },
  'stall-fraction': { type: 'string' },
  interactive: { type: 'boolean', default: false },
  sources: { type: 'string' },
  'source-base': { type: 'string' },
  'connect-concurrency': { type: 'string' },
  'settle-ms': { type: 'string' },
  'drain-ms': { type: 'string' },
  'stall-flood-mb': { type: 'string' },
  'stall-flood-clients': { type: 'string' },
  'stall-hold-ms': { type: 'string' },
  label: { type: 'string' },
});
if (args.url === undefined) throw new Error('--url is required');
const url = new URL(args.url);
const N = num(args.clients, 1000, 'clients');
const durationS = num(args.duration, 10, 'duration');
const stallFraction = num(args['stall-fraction'], 0, 'stall-fraction');
// Gateways limit connections per client IP (evmux: 200) and pin sessions by IP, so by default
// clients come from 127.0.0.2, 127.0.0.3, ... with at most 150 per address, like many users.
const sources = Math.min(250, num(args.sources, Math.ceil(N / 150), 'sources'));
const sourceBase = num(args['source-base'], 2, 'source-base');
if (sourceBase + sources > 256) throw new Error('--sources + --source-base must stay within 127.0.0.255');
const settleMs = num(args['settle-ms'], 1500, 'settle-ms');
const drainMs = num(args['drain-ms'], 3000, 'drain-ms');
const floodBytes = num(args['stall-flood-mb'], 0, 'stall-flood-mb') * 1024 * 1024;
const floodClients = num(args['stall-flood-clients'], Number.POSITIVE_INFINITY, 'stall-flood-clients');
const holdMs = num(args['stall-hold-ms'], 3000, 'stall-hold-ms');
const stallEvery = stallFraction > 0 ? Math.max(1, Math.round(1 / stallFraction)) : 0;
const isStalled = (i: number): boolean => stallEvery > 0 && i % stallEvery === stallEvery - 1;

const state = new FanoutState(N);
const clients: (LeanWsClient | undefined)[] = new Array<LeanWsClient | undefined>(N);
const subscribed = new Uint8Array(N); // bit 1: newHeads answered, bit 2: logs answered
const counters = { connectFailed: 0, subscribeErrors: 0, otherMessages: 0 };
const closeCodes: Record<string, number> = {};
let answered = 0;

const EXTRA = Buffer.from('"extraData"');
const ERROR = Buffer.from('"error"');
const SUB_NEWHEADS = '{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}';
// ~256 KB replies from the fake upstream and bare publish ("full transactions").
const FLOOD_CALL = '{"jsonrpc":"2.0","id":3,"method":"eth_getBlockByNumber","params":["latest",true]}';
const SUB_LOGS =
  '{"jsonrpc":"2.0","id":2,"method":"eth_subscribe","params":["logs",{"address":"0x00000000000000000000000000000000000000aa"}]}';

function onMessage(i: number, payload: Buffer, client: LeanWsClient): void {
  if (payload.indexOf(EXTRA) >= 0) {
    const recv = nowUs();
    const n = hexValue(payload, 'number');
    const sent = hexValue(payload, 'extraData');
    if (n === undefined || sent === undefined) counters.otherMessages++;
    else if (!isStalled(i)) state.record(i, n, sent, recv);
    return;
  }
  const id = intValue(payload, 'id');
  if (id === 3) return; // a flood reply read after resume
  if (id !== 1 && id !== 2) {
    counters.otherMessages++;
    return;
  }
  if (payload.indexOf(ERROR) >= 0) counters.subscribeErrors++;
  subscribed[i] = (subscribed[i] ?? 0) | id;
  answered++;
  // Stalled clients stop reading once their last subscription is confirmed.
  if (isStalled(i) && id === (args.logs ? 2 : 1)) client.pause();
}

// ---- control channel ------------------------------------------------------------------------
let ackWaiter: (() => void) | undefined;
if (stdinIsPipe()) {
  process.stdin.on('end', () => process.exit(0)); // run-all went away
  onStdinLines((msg) => {
    if (typeof msg.mark === 'number') state.markUs = msg.mark;
    if (msg.ack === true) {
      const w = ackWaiter;
      ackWaiter = undefined;
      w?.();
    }
  });
}

async function announce(event: string, extra: Record<string, unknown> = {}): Promise<void> {
  emit({ event, tool: 'fanout-load', tUs: Math.round(nowUs()), maxHead: state.maxSeen, ...extra });
  if (!args.interactive) return;
  await new Promise<void>((resolve) => {
    ackWaiter = resolve;
  });
}

// ---- phases ---------------------------------------------------------------------------------
async function connectAll(): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < N) {
      const i = next++;
      const localAddress = sources > 1 || sourceBase !== 1 ? `127.0.0.${sourceBase + (i % sources)}` : undefined;
      try {
        clients[i] = await LeanWsClient.connect({
          host: url.hostname,
          port: Number(url.port),
          path: url.pathname,
          ...(localAddress !== undefined ? { localAddress } : {}),
          onMessage: (payload, c) => onMessage(i, payload, c),
          onClose: (c) => {
            const code = String(c.closeCode ?? (c.error !== undefined ? 'error' : 'none'));
            closeCodes[code] = (closeCodes[code] ?? 0) + 1;
          },
        });
      } catch {
        counters.connectFailed++;
      }
    }
  };
  await Promise.all(Array.from({ length: num(args['connect-concurrency'], 200, 'connect-concurrency') }, worker));
}

/** Send `frame` to clients [from, to) and wait until they answered (or 30 s pass). */
async function subscribeRange(from: number, to: number, frame: string): Promise<void> {
  const target = answered + (to - from);
  for (let i = from; i < to; i++) {
    const c = clients[i];
    if (c === undefined || c.closed) {
      answered++; // nothing to wait for
      continue;
    }
    c.send(frame);
    if ((i - from) % 500 === 499) await new Promise((r) => setImmediate(r));
  }
  const deadline = Date.now() + 30_000;
  while (answered < target && Date.now() < deadline) await sleep(20);
}

/**
 * A stalled client only accumulates ~1.4 KB per head, and loopback kernel buffers absorb ~4 MB
 * before the server sees any backpressure, so heads alone never reach a send buffer cap within
 * a benchmark. The first `floodClients` stalled clients therefore also request ~256 KB blocks
 * they never read, in small bursts, until `floodBytes` of responses are requested or a write
 * fails (the server closed); then the server gets `holdMs` to produce those responses.
 */
async function floodStalled(idx: number[]): Promise<Record<string, number> | null> {
  if (floodBytes <= 0 || idx.length === 0) return null;
  const perBurst = 4;
  const bursts = Math.ceil(floodBytes / (perBurst * 256 * 1024));
  const t0 = Date.now();
  let requested = 0;
  for (let b = 0; b < bursts && Date.now() - t0 < 30_000; b++) {
    let open = 0;
    for (const i of idx) {
      const c = clients[i];
      if (c === undefined || c.closed || c.error !== undefined) continue;
      open++;
      for (let k = 0; k < perBurst; k++) c.send(FLOOD_CALL);
      requested += perBurst;
    }
    if (open === 0) break;
    await sleep(20);
  }
  const floodMs = Date.now() - t0;
  await sleep(holdMs);
  const failed = idx.filter((i) => clients[i]?.closed === true || clients[i]?.error !== undefined).length;
  return { clients: idx.length, requestedCalls: requested, seenClosedWhileStalled: failed, floodMs, holdMs };
}

/** Resume the stalled clients and count those the server had disconnected. */
async function checkStalled(): Promise<Record<string, unknown>> {
  const stalledIdx = [...Array(N).keys()].filter((i) => isStalled(i) && clients[i] !== undefined);
  const flooded = stalledIdx.slice(0, Math.min(stalledIdx.length, floodClients));
  const flood = await floodStalled(flooded);
  const bytesBefore = stalledIdx.map((i) => clients[i]?.bytesIn ?? 0);
  for (const i of stalledIdx) clients[i]?.resume();
  const deadline = Date.now() + drainMs;
  while (Date.now() < deadline && stalledIdx.some((i) => clients[i]?.closed === false)) await sleep(50);
  const isClosed = (i: number): boolean => clients[i]?.closed === true;
  const drained = stalledIdx.map((i, k) => (clients[i]?.bytesIn ?? 0) - (bytesBefore[k] ?? 0));
  const codes: Record<string, number> = {};
  for (const i of stalledIdx) {
    const c = clients[i];
    if (c?.closed !== true) continue;
    const code = String(c.closeCode ?? (c.error !== undefined ? 'reset' : 'none'));
    codes[code] = (codes[code] ?? 0) + 1;
  }
  return {
    clients: stalledIdx.length,
    disconnected: stalledIdx.filter(isClosed).length,
    stillOpen: stalledIdx.filter((i) => !isClosed(i)).length,
    flooded: flood === null ? 0 : flooded.length,
    floodedDisconnected: flood === null ? 0 : flooded.filter(isClosed).length,
    closeCodes: codes,
    bytesDrainedAfterResumeMax: drained.length > 0 ? Math.max(...drained) : 0,
    flood,
  };
}

async function main(): Promise<void> {
  const cpu0 = process.cpuUsage();
  const tConnect = Date.now();
  await connectAll();
  const connected = clients.filter((c) => c !== undefined).length;
  await announce('connected', { clients: connected, connectFailed: counters.connectFailed, connectMs: Date.now() - tConnect });

  const steps = (args.steps ?? '').split(',').map(Number).filter((s) => s > 0 && s < N);
  let done = 0;
  for (const step of [...steps, N]) {
    await subscribeRange(done, step, SUB_NEWHEADS);
    done = step;
    await announce('subscribed', { subscribers: step, subscribeErrors: counters.subscribeErrors });
  }
  if (args.logs) {
    await subscribeRange(0, N, SUB_LOGS);
    await announce('logs-subscribed', { subscribeErrors: counters.subscribeErrors });
  }
  await sleep(settleMs);
  await announce('settled');

  const gcPauses = new GcPauses();
  state.openWindow();
  await announce('window-start');
  const cpuWindow = process.cpuUsage();
  gcPauses.start(performance.now());
  await sleep(durationS * 1000);
  state.closeWindow();
  gcPauses.stop(performance.now());
  const cpu = process.cpuUsage(cpuWindow);
  await announce('window-end', { heads: state.cutoff - state.windowStart + 1 });

  // Late deliveries of heads up to the cutoff still count; then look at the stalled clients.
  await sleep(Math.min(drainMs, 2000));
  const stalled = await checkStalled();

  const measured = (i: number): boolean => clients[i] !== undefined && !isStalled(i);
  const summary = state.summary(measured, (i) => clients[i]?.closed === false);
  const total = process.cpuUsage(cpu0);
  emit({
    event: 'result',
    tool: 'fanout-load',
    label: args.label ?? null,
    url: args.url,
    clients: N,
    connected,
    connectFailed: counters.connectFailed,
    subscribeErrors: counters.subscribeErrors,
    // Connected clients whose eth_subscribe newHeads was never answered.
    unconfirmed: clients.filter((c, i) => c !== undefined && ((subscribed[i] ?? 0) & 1) === 0).length,
    otherMessages: counters.otherMessages,
    logs: args.logs,
    durationS,
    ...summary,
    stalled,
    failover: state.markSummary(measured),
    closeCodes,
    // The generator's own CPU: if the window figure nears durationS × 1000 it is the bottleneck.
    loadgenCpuMs: {
      window: Math.round((cpu.user + cpu.system) / 1000),
      total: Math.round((total.user + total.system) / 1000),
    },
    loadgenRssMb: Math.round(process.memoryUsage().rss / 1048576),
    // The generator's own GC pauses in the window: each one delays the reads of every client.
    loadgenGc: gcPauses.summary(),
  });
  for (const c of clients) c?.destroy();
}

const hardStop = setTimeout(
  () => {
    process.stderr.write('fanout-load: hard deadline reached\n');
    process.exit(3);
  },
  (durationS + 300) * 1000,
);
hardStop.unref();

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`fanout-load: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
