// Call benchmarks: throughput at saturation, serial latency and open-loop latency, for the fake
// node directly (the limit), nginx in front of it, and evmux in front of it, in the same run. The
// latency benchmarks also measure the Node floor (bare-proxy.ts: uWS in, one `ws` socket out, an id
// swap): what a Node process adds in the same placement before doing any of evmux's work. The
// open-loop benchmarks also measure the Node pipe (node-pipe.ts: a TCP byte pipe), the least any Node
// process in that place adds: a row it misses is out of reach for a Node gateway on the machine,
// and the table says so. Asked for with --peers, the pipe runs in the serial benchmarks too, and the
// lean floor (bare-proxy.ts --upstream-client lean: the floor with a hand-written node client in
// place of `ws`), the least a uWebSockets.js front end adds, in both.
//
// Pinning (2 cores), chosen per benchmark because the best placement differs:
//   saturation: load generator + upstream on cpu 0, the peer alone on cpu 1 (direct: upstream
//               alone on cpu 1), so the peer under test has a whole core;
//   serial 1×1 and open loop: the load generator on cpu 0 (in the open loop busy-polling, without
//               V8's optimizing compiler, see OPEN_LOOP_GENERATOR_FLAGS); peer and upstream share
//               cpu 1. (Serial once ran every process on cpu 0; there, one core busy from one call
//               to the next left a gateway's compiler threads, at idle priority, no time to run.)
import { spawn } from 'node:child_process';
import { cpuMs, freePort, type Child } from './children.js';
import { startNginx, type NginxPeer } from './nginx.js';
import { ParkedPeers, pin, runTool, startBareProxy, startEvmux, startFakeUpstream, startNodePipe, type EvmuxCommand, type Server } from './peers.js';
import { defaultGenesisMs } from './chain.js';
import { sleep } from './process-util.js';
import { field, median, round } from './stats.js';

/**
 * The open-loop generator runs without V8's optimizing compiler. Its optimizations are compiled on
 * a helper thread that shares the generator's core, so each one took the busy-polling main thread
 * off the core for 1-3 ms at the same moments of every window (the last at the window start, when
 * the generator resets its tallies); the calls due meanwhile then left in one burst, which a gateway
 * answers more slowly than the node alone. Baseline code costs every peer the same ~6 µs of p50.
 */
const OPEN_LOOP_GENERATOR_FLAGS = ['--max-opt=1'];

/** EVMUX_BENCH_TRACE_DIR=DIR: every open-loop window's per-call trace (call-load --trace) goes there. */
const TRACE_DIR = process.env.EVMUX_BENCH_TRACE_DIR;

export const PEER_NAMES = ['direct', 'nginx', 'pipe', 'lean-floor', 'floor', 'evmux'] as const;
export type PeerName = (typeof PEER_NAMES)[number];
/** Peers measured only when --peers names them (they would push a full run past 10 minutes). */
const ON_REQUEST: readonly PeerName[] = ['lean-floor'];
/**
 * Peers a full run measures in the open loop only (the row the Node floor misses; the serial rows
 * are met, and the pipe there would push the run past 10 minutes); anywhere --peers names them.
 */
const OPEN_LOOP_BY_DEFAULT: readonly PeerName[] = ['pipe'];
/** Latency references only: at saturation they would only lengthen the run. */
const LATENCY_ONLY: readonly PeerName[] = ['pipe', 'lean-floor', 'floor'];
type Kind = 'saturation' | 'serial' | 'open';

interface CallConfig {
  name: string;
  kind: Kind;
  transport: 'ws' | 'http';
  method: 'small' | 'block';
}

export const CALL_CONFIGS: CallConfig[] = [
  { name: 'saturation-ws-small', kind: 'saturation', transport: 'ws', method: 'small' },
  { name: 'saturation-ws-block', kind: 'saturation', transport: 'ws', method: 'block' },
  { name: 'saturation-http-small', kind: 'saturation', transport: 'http', method: 'small' },
  { name: 'saturation-http-block', kind: 'saturation', transport: 'http', method: 'block' },
  { name: 'serial-ws-small', kind: 'serial', transport: 'ws', method: 'small' },
  { name: 'serial-http-small', kind: 'serial', transport: 'http', method: 'small' },
  { name: 'open5k-ws-small', kind: 'open', transport: 'ws', method: 'small' },
  { name: 'open5k-http-small', kind: 'open', transport: 'http', method: 'small' },
];

export interface CallsOptions {
  quick: boolean;
  evmux: EvmuxCommand | undefined;
  log: (msg: string) => void;
  /** Only these call configs (names from CALL_CONFIGS); all when absent. */
  configs?: string[] | undefined;
  /** Only these peers (direct always runs: it is the baseline); all but the lean floor when absent (the pipe in the open loop only). */
  peers?: string[] | undefined;
}

export interface PeerSummary {
  runs: Record<string, unknown>[];
  rps: number;
  p50Us: number;
  p99Us: number;
  errors: number;
  /** The peer's own CPU (user+sys) per completed request, µs. */
  peerCpuUsPerRequest: number;
  /** The peer's CPU use during the window, % of one core: near 100 means the peer is the limit. */
  peerCpuPct: number;
}

export interface CallsResult {
  peers: Record<PeerName, { available: boolean; note?: string }>;
  configs: {
    name: string;
    kind: Kind;
    transport: string;
    method: string;
    byPeer: Partial<Record<PeerName, PeerSummary>>;
    /** Latency configs: rounds measured; earlier rounds were discarded because their baseline was disturbed. */
    attempts?: number;
    /** Each discarded round's median p99 per peer (µs). */
    discarded?: Partial<Record<PeerName, number>>[];
    /** The kept round's baseline was slower than a proxy in front of the same node: not a valid comparison. */
    disturbed?: boolean;
  }[];
  /** Whether peers waiting for their turn ran SCHED_IDLE (needs root to undo). */
  waitingPeersIdle: boolean;
  errors: string[];
}

/** Rounds a latency config is measured again at most when its baseline was disturbed. */
const MAX_REMEASURE = 2;
/**
 * Time all such rounds of a run may take together: a full run takes ~550 s without them on the
 * sixteenth session's machine, and must stay under 10 minutes (room for one serial round).
 */
const REMEASURE_BUDGET_MS = 35_000;

/** Each peer's median p99 of a round. */
function medianP99s(byPeer: Partial<Record<PeerName, PeerSummary>>): Partial<Record<PeerName, number>> {
  const out: Partial<Record<PeerName, number>> = {};
  for (const peer of PEER_NAMES) if (byPeer[peer] !== undefined) out[peer] = byPeer[peer].p99Us;
  return out;
}

/** True when direct's median p99 is above some proxy's: the baseline windows ran on a slowed machine. */
export function baselineDisturbed(byPeer: Partial<Record<PeerName, PeerSummary>>): boolean {
  const direct = byPeer.direct?.p99Us;
  if (direct === undefined) return false;
  return PEER_NAMES.some((peer) => peer !== 'direct' && byPeer[peer] !== undefined && byPeer[peer].p99Us < direct);
}

async function waitPost(port: number, child: Child, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && child.running) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/`, {
        method: 'POST',
        body: '{"jsonrpc":"2.0","id":1,"method":"net_version","params":[]}',
        headers: { 'content-type': 'application/json' },
        signal: AbortSignal.timeout(1000),
      });
      if (res.status === 200) return true;
    } catch {
      // not up yet
    }
    await sleep(100);
  }
  return false;
}

export async function runCalls(o: CallsOptions): Promise<CallsResult> {
  const result: CallsResult = {
    peers: {
      direct: { available: true },
      nginx: { available: false },
      pipe: { available: false },
      'lean-floor': { available: false },
      floor: { available: false },
      evmux: { available: false },
    },
    configs: [],
    waitingPeersIdle: false,
    errors: [],
  };
  const upstream = await startFakeUpstream({ intervalMs: 1000, genesisMs: defaultGenesisMs(1000), cpu: '0' });
  const ports: Partial<Record<PeerName, { port: number; pid: number }>> = {
    direct: { port: upstream.port, pid: upstream.child.pid },
  };
  let nginx: NginxPeer | undefined;
  let evmux: Server | undefined;
  let floor: Server | undefined;
  let leanFloor: Server | undefined;
  let pipe: Server | undefined;
  const wanted = (p: PeerName): boolean =>
    p === 'direct' || (o.peers === undefined ? !ON_REQUEST.includes(p) : o.peers.includes(p));
  try {
    if (!wanted('nginx')) result.peers.nginx = { available: false, note: 'not asked for (--peers)' };
    else {
      const nginxPort = await freePort();
      nginx = startNginx(nginxPort, upstream.port, '1');
      if (nginx === undefined) result.peers.nginx = { available: false, note: 'nginx not installed' };
      else if (await waitPost(nginxPort, nginx.child, 10_000)) {
        result.peers.nginx = { available: true };
        ports.nginx = { port: nginxPort, pid: nginx.child.pid };
      } else result.peers.nginx = { available: false, note: `nginx did not start: ${nginx.child.stderrTail.slice(-300)}` };
    }

    /** One of the Node reference peers in front of the node, on evmux's node flags; undefined when not started. */
    const startReference = async (peer: 'pipe' | 'lean-floor' | 'floor', start: typeof startNodePipe): Promise<Server | undefined> => {
      if (!wanted(peer)) {
        result.peers[peer] = { available: false, note: 'not asked for (--peers)' };
        return undefined;
      }
      try {
        const server = await start({ upstreamPort: upstream.port, cpu: '1', ...(o.evmux !== undefined && { nodeFlags: o.evmux.nodeFlags }) });
        result.peers[peer] = { available: true };
        ports[peer] = { port: server.port, pid: server.child.pid };
        return server;
      } catch (err) {
        result.peers[peer] = { available: false, note: String(err instanceof Error ? err.message : err).slice(0, 600) };
        return undefined;
      }
    };
    pipe = await startReference('pipe', startNodePipe);
    leanFloor = await startReference('lean-floor', (peer) => startBareProxy({ ...peer, upstreamClient: 'lean' }));
    floor = await startReference('floor', startBareProxy);

    if (!wanted('evmux')) result.peers.evmux = { available: false, note: 'not asked for (--peers)' };
    else if (o.evmux === undefined) result.peers.evmux = { available: false, note: 'src/cli.ts not found' };
    else {
      try {
        evmux = await startEvmux({ cmd: o.evmux, upstreams: [{ name: 'node', port: upstream.port }], cpu: '1' });
        await sleep(500);
        result.peers.evmux = { available: true };
        ports.evmux = { port: evmux.port, pid: evmux.child.pid };
      } catch (err) {
        result.peers.evmux = { available: false, note: String(err instanceof Error ? err.message : err).slice(0, 600) };
      }
    }

    // Peers waiting for their turn share the measured peer's core. Their collections after their own
    // runs (V8's memory reducer, seconds after the load stops) and timers landed in the next peer's
    // windows, and the rotation always puts the same peer after the same one. Waiting peers are
    // therefore SCHED_IDLE, when the machine lets us put them back (root).
    const parked = new ParkedPeers();
    const probe = spawn('sleep', ['30'], { stdio: 'ignore' }).on('error', () => {});
    parked.park(probe.pid ?? -1);
    const waitIdle = probe.pid !== undefined && parked.resume(probe.pid);
    probe.kill();
    result.waitingPeersIdle = waitIdle;
    const durationS = o.quick ? 1 : 2;
    const warmupS = o.quick ? 0.3 : 0.7;
    const started = PEER_NAMES.filter((p) => ports[p] !== undefined);
    /** Give `peer` its core: the other peers wait at idle priority (when the machine lets us). */
    const focus = (peer: PeerName): void => {
      for (const p of waitIdle ? started : []) {
        const pid = p === 'direct' ? undefined : ports[p]?.pid;
        if (pid === undefined) continue;
        if (p === peer) parked.resume(pid);
        else parked.park(pid);
      }
    };
    let remeasureLeftMs = REMEASURE_BUDGET_MS;
    // Peers that have taken load since they started. A fresh Node process pays for first touches of
    // its heap (page faults, dear on a nested VM) and for compiling its hot code during its first
    // seconds of calls, so a latency window must not be any peer's first load: one that has not run
    // at saturation is warmed up first, unmeasured.
    const warm = new Set<PeerName>();
    for (const cfg of CALL_CONFIGS.filter((c) => o.configs === undefined || o.configs.includes(c.name))) {
      const available = started.filter(
        (p) => (!LATENCY_ONLY.includes(p) || cfg.kind !== 'saturation') && (o.peers !== undefined || !OPEN_LOOP_BY_DEFAULT.includes(p) || cfg.kind === 'open'),
      );
      if (cfg.kind !== 'saturation') {
        for (const peer of available.filter((p) => !warm.has(p))) {
          const target = ports[peer];
          if (target === undefined) continue;
          placeFor('saturation', peer, upstream.child.pid, target.pid);
          focus(peer);
          await warmUp(`${cfg.transport}://127.0.0.1:${target.port}/`, o.quick ? 0.5 : WARM_UP_S).catch((err: unknown) => {
            result.errors.push(`warm-up/${peer}: ${err instanceof Error ? err.message : String(err)}`);
          });
        }
      }
      for (const peer of available) warm.add(peer);
      const measure = async (again: number): Promise<Partial<Record<PeerName, PeerSummary>>> => {
        const runs: Partial<Record<PeerName, Record<string, unknown>[]>> = {};
        const cpuPerReq: Partial<Record<PeerName, number[]>> = {};
        // An open-loop p99 sits where the machine's own stalls (about half a percent of calls, every
        // peer alike) meet the peer's: one window more or less stalled moves it by hundreds of µs, so
        // its median is taken over more windows.
        const reps = o.quick ? 1 : cfg.kind === 'open' ? 4 : 3;
        for (let rep = 0; rep < reps; rep++) {
          // Rotate the order each repetition so no peer always runs first (A/B/C, B/C/A, ...).
          const order = available.map((_, k) => available[(k + rep) % available.length]).filter((p) => p !== undefined);
          for (const peer of order) {
            const target = ports[peer];
            if (target === undefined) continue;
            if (peer !== 'direct' && ![nginx?.child, pipe?.child, leanFloor?.child, floor?.child, evmux?.child].some((c) => c?.pid === target.pid && c.running)) {
              result.errors.push(`${cfg.name}/${peer}: peer is not running`);
              continue;
            }
            const loadCpu = placeFor(cfg.kind, peer, upstream.child.pid, target.pid);
            focus(peer);
            const args = [
              '--url',
              `${cfg.transport}://127.0.0.1:${target.port}/`,
              '--mode',
              cfg.kind === 'saturation' ? 'closed' : cfg.kind,
              '--method',
              cfg.method,
              '--duration',
              String(durationS),
              '--warmup',
              String(warmupS),
              '--label',
              `${cfg.name}/${peer}`,
              '--events',
              ...(cfg.kind === 'saturation' ? ['--conns', '32', '--inflight', '8'] : []),
              ...(cfg.kind === 'open' ? ['--rate', '5000'] : []),
              ...(cfg.kind === 'open' && TRACE_DIR !== undefined ? ['--trace', `${TRACE_DIR}/${cfg.name}-${peer}-${rep}${again > 0 ? `-again${again}` : ''}.txt`] : []),
            ];
            // The target's CPU over exactly the measured window (call-load announces it).
            const win = { c0: Number.NaN, c1: Number.NaN, t0: 0, t1: 0 };
            const onEvent = (e: Record<string, unknown>): void => {
              if (e.event === 'window-start') [win.c0, win.t0] = [cpuMs(target.pid), Date.now()];
              if (e.event === 'window-end') [win.c1, win.t1] = [cpuMs(target.pid), Date.now()];
            };
            try {
              const r = await runTool('call-load', args, {
                cpu: loadCpu,
                timeoutMs: (durationS + warmupS + 40) * 1000,
                onEvent,
                ...(cfg.kind === 'open' && { nodeFlags: OPEN_LOOP_GENERATOR_FLAGS }),
              });
              if (typeof r.error === 'string') result.errors.push(`${cfg.name}/${peer}: ${r.error}`);
              r.peerCpuMs = win.c1 - win.c0;
              r.peerCpuPct = win.t1 > win.t0 ? round(((win.c1 - win.c0) * 100) / (win.t1 - win.t0)) : null;
              (runs[peer] ??= []).push(r);
              const reqs = field(r, 'requests');
              if (reqs > 0) (cpuPerReq[peer] ??= []).push(((win.c1 - win.c0) * 1000) / reqs);
            } catch (err) {
              result.errors.push(`${cfg.name}/${peer}: ${err instanceof Error ? err.message : String(err)}`);
            }
          }
        }
        const byPeer: Partial<Record<PeerName, PeerSummary>> = {};
        for (const peer of available) {
          const list = runs[peer] ?? [];
          if (list.length === 0) continue;
          byPeer[peer] = {
            runs: list,
            rps: Math.round(median(list.map((r) => field(r, 'rps')))),
            p50Us: round(median(list.map((r) => field(r, 'latency.p50Us')))),
            p99Us: round(median(list.map((r) => field(r, 'latency.p99Us')))),
            errors: list.reduce((s, r) => s + (field(r, 'errors') || 0), 0),
            peerCpuUsPerRequest: round(median(cpuPerReq[peer] ?? []), 2),
            peerCpuPct: round(median(list.map((r) => field(r, 'peerCpuPct')))),
          };
        }
        return byPeer;
      };
      // A latency comparison needs a baseline measured on a machine in its normal state. The host
      // sometimes takes this VM's cores away for milliseconds at a time (invisible as steal time
      // here); when that lands in direct's windows, direct comes out slower than a proxy in front of
      // the same node, which no proxy can be. Such a round is measured again, all peers alike.
      // The rounds measured again share one time budget, so that a full run stays under 10 minutes.
      const roundStarted = Date.now();
      let byPeer = await measure(0);
      const roundMs = Date.now() - roundStarted;
      const discarded: Partial<Record<PeerName, number>>[] = [];
      const latency = cfg.kind !== 'saturation';
      while (latency && !o.quick && baselineDisturbed(byPeer) && discarded.length < MAX_REMEASURE && remeasureLeftMs >= roundMs) {
        remeasureLeftMs -= roundMs;
        discarded.push(medianP99s(byPeer));
        o.log(`calls ${cfg.name}: direct's p99 ${byPeer.direct?.p99Us} µs is above a proxy's (${JSON.stringify(medianP99s(byPeer))}): baseline disturbed, measuring again`);
        byPeer = await measure(discarded.length);
      }
      const checks = latency && !o.quick ? { attempts: discarded.length + 1, discarded, disturbed: baselineDisturbed(byPeer) } : {};
      result.configs.push({ name: cfg.name, kind: cfg.kind, transport: cfg.transport, method: cfg.method, byPeer, ...checks });
      o.log(`calls ${cfg.name}: ${available.map((p) => `${p} ${byPeer[p]?.rps ?? '-'} rps p50 ${byPeer[p]?.p50Us ?? '-'} µs`).join(', ')}`);
    }
  } finally {
    await evmux?.child.stop();
    await floor?.child.stop();
    await leanFloor?.child.stop();
    await pipe?.child.stop();
    await nginx?.stop();
    await upstream.child.stop();
  }
  return result;
}

/** Seconds of unmeasured closed-loop load that warm up a peer before its first latency window. */
const WARM_UP_S = 3;

/** Closed-loop load at saturation for `seconds`, results discarded. */
async function warmUp(url: string, seconds: number): Promise<void> {
  const args = ['--url', url, '--mode', 'closed', '--method', 'small', '--duration', String(seconds), '--warmup', '0', '--conns', '32', '--inflight', '8'];
  await runTool('call-load', args, { cpu: '0', timeoutMs: (seconds + 40) * 1000 });
}

/** Pin the processes for one run and return the load generator's CPU list. */
function placeFor(kind: Kind, peer: PeerName, upstreamPid: number, peerPid: number): string {
  if (kind === 'serial' || kind === 'open') {
    pin(upstreamPid, '1');
    pin(peerPid, '1');
    return '0';
  }
  if (peer === 'direct') pin(upstreamPid, '1');
  else {
    pin(upstreamPid, '0');
    pin(peerPid, '1');
  }
  return '0';
}
