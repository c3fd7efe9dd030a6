// Fan-out benchmarks: N newHeads subscribers at 4 heads/s, evmux against the bare-publish
// baseline, in the same run. Three runs share one window: bare, evmux, and a second evmux whose
// clients are 1 % stalled (its reference is the first evmux). They take turns (0.5 s each: two
// heads) publishing, each at 4 heads/s in its turns (chain.ts), so a slow moment of the machine,
// which lasts seconds, lands on all alike; each gets durationS of heads. Each connects and
// subscribes its clients (one newHeads and one logs subscription each) alone first; bare and the
// first evmux take readings on the way: memory per client (idle, then subscribed) and upstream
// subscription counts as subscribers go 1, 10, 100, 1000, N.
//
// Pinning: the peers on cpu 1 (one publishes while the others wait for their turns); fake
// upstreams and load generators on cpu 0.
// Memory method: the peer runs with --inspect=127.0.0.1:0; before each reading run-all calls
// HeapProfiler.collectGarbage over the inspector, waits 500 ms, then reads VmRSS from
// /proc/PID/status. Per client = (RSS with N clients − RSS before any client) / N.
// CPU method: user+system ticks of the peer from /proc/PID/stat, side by side at every turn
// boundary and summed over the peer's own turns (turn-cpu.ts), divided by the heads of those
// turns.
import { cpuMs, rssKb, type Child } from './children.js';
import { defaultGenesisMs, type Turns } from './chain.js';
import { collectGarbage, getJson, httpGet, parseMetric } from './probe.js';
import { startBare, startEvmux, startFakeUpstream, startTool, type EvmuxCommand, type Server } from './peers.js';
import { sleep, withTimeout } from './process-util.js';
import { TurnCpu, type TurnCpuShare } from './turn-cpu.js';
import { field, round } from './stats.js';

export type FanoutPeer = 'bare' | 'evmux';

/**
 * Each peer's turn side by side: two heads at 250 ms blocks. With 2.5 s turns a slow stretch of
 * the machine (1-2 s) fell inside one peer's turns and set its p99 alone (BENCHMARKS.md,
 * seventeenth session).
 */
const TURN_MS = 500;

export interface FanoutOptions {
  quick: boolean;
  evmux: EvmuxCommand | undefined;
  log: (msg: string) => void;
  /** `ulimit -n` of this process (children inherit it); fewer clients when it is too low. */
  openFilesLimit: number;
  /** Length of each peer's turn side by side (default TURN_MS). */
  turnMs?: number;
}

interface SubsReading {
  subscribers: number;
  kind: string;
  /** Live eth_subscribe calls the fake upstream counts (evmux runs only). */
  upstreamCount: number | null;
  /** evmux_upstream_subscriptions samples summed per upstream for this kind. */
  metric: Record<string, number> | null;
}

export interface FanoutRun {
  peer: FanoutPeer;
  clients: number;
  stallFraction: number;
  gc: boolean;
  rssKb: { base: number; connected: number; subscribed: number };
  bytesPerClient: { idle: number; subscribed: number };
  /** the peer's CPU over the whole window */
  cpuWindowMs: number;
  /** side by side: the peer's CPU in its own turns, which cpuMsPerHead is taken from */
  turnCpu?: TurnCpuShare;
  cpuMsPerHead: number;
  /** Peer CPU per delivered notification vs the load generator's: the generator must be cheaper. */
  peerCpuUsPerNotification: number;
  loadgenCpuUsPerNotification: number;
  upstreamSubscriptions: SubsReading[];
  result: Record<string, unknown>;
}

export interface FanoutResult {
  clients: number;
  durationS: number;
  intervalMs: number;
  /**
   * Every run shares one window of windowS, the members taking turns of turnMs in this order
   * (null in older results: one peer alone).
   */
  sideBySide: { windowS: number; turnMs: number; members?: string[] } | null;
  /** each peer with every client reading */
  main: Partial<Record<FanoutPeer, FanoutRun>>;
  /** the same peer with 1 % of its clients stalled; its reference is main[peer] */
  stalled: Partial<Record<FanoutPeer, FanoutRun>>;
  errors: string[];
}

const INTERVAL_MS = 250;
/** the share of a stalled run's clients that stop reading */
const STALL_FRACTION = 0.01;
/** the stalled evmux's idle timeout beyond the window: setup, the flood, its hold and the checks */
const STALLED_IDLE_MARGIN_S = 60;

/** One run in the shared window: a peer and the plan fields that set it apart from the others. */
type WindowMember = { peer: FanoutPeer } & Pick<RunPlan, 'stallFraction' | 'label' | 'readings' | 'evmuxConfig'>;

async function startPeer(peer: FanoutPeer, o: FanoutOptions, plan: RunPlan): Promise<{ server: Server; upstream?: Server }> {
  const chain = { intervalMs: INTERVAL_MS, genesisMs: plan.genesisMs, turns: plan.turns };
  if (peer === 'bare') return { server: await startBare({ ...chain, cpu: '1', inspect: true }) };
  if (o.evmux === undefined) throw new Error('evmux not found');
  const upstream = await startFakeUpstream({ ...chain, cpu: '0' });
  try {
    const server = await startEvmux({
      cmd: o.evmux,
      upstreams: [{ name: 'node', port: upstream.port }],
      cpu: '1',
      inspect: true,
      ...(plan.evmuxConfig !== undefined && { config: plan.evmuxConfig }),
    });
    return { server, upstream };
  } catch (err) {
    await upstream.child.stop();
    throw err;
  }
}

async function gcRss(server: Server): Promise<{ kb: number; gc: boolean }> {
  const gc = server.inspector !== undefined ? await collectGarbage(server.inspector).catch(() => false) : false;
  await sleep(500);
  return { kb: rssKb(server.child.pid), gc };
}

async function readSubs(peer: FanoutPeer, server: Server, upstream: Server | undefined, subscribers: number, kind: string): Promise<SubsReading> {
  if (peer === 'bare' || upstream === undefined) return { subscribers, kind, upstreamCount: null, metric: null };
  await sleep(300); // let the gateway's upstream eth_subscribe land
  const stats = await getJson(upstream.port, '/stats').catch(() => ({}) as Record<string, unknown>);
  const metrics = await httpGet(server.port, '/metrics').catch(() => ({ status: 0, body: '' }));
  const perUpstream: Record<string, number> = {};
  for (const s of parseMetric(metrics.body, 'evmux_upstream_subscriptions')) {
    if (s.labels.kind !== kind) continue;
    const u = s.labels.upstream ?? '?';
    perUpstream[u] = (perUpstream[u] ?? 0) + s.value;
  }
  return { subscribers, kind, upstreamCount: field(stats, `subscriptions.${kind}`), metric: perUpstream };
}

interface RunPlan {
  clients: number;
  durationS: number;
  stallFraction: number;
  /** memory and subscription readings (RSS, steps of subscribers) before the window */
  readings: boolean;
  label: string;
  genesisMs: number;
  /** the run's share of the heads in the shared window (chain.ts) */
  turns: Turns;
  /** evmux settings beyond the defaults */
  evmuxConfig?: Record<string, unknown>;
}

/**
 * One fan-out run against one peer, driven step by step through the interactive protocol. It is
 * held when its clients are subscribed and settled (`settled`) until `go()`, so several runs can
 * open their measurement windows together.
 */
interface PeerRun {
  /** the peer's pid once its clients are settled; undefined if it failed before */
  settled: Promise<number | undefined>;
  go(): void;
  done: Promise<FanoutRun>;
}

function startRun(peer: FanoutPeer, o: FanoutOptions, plan: RunPlan): PeerRun {
  let settle!: (pid: number | undefined) => void;
  let go!: () => void;
  const settled = new Promise<number | undefined>((resolve) => (settle = resolve));
  const released = new Promise<void>((resolve) => (go = resolve));
  const done = measure(peer, o, plan, settle, released);
  // A run that fails before it settles must not leave the others waiting for it.
  done.catch(() => settle(undefined));
  return { settled, go, done };
}

async function measure(
  peer: FanoutPeer,
  o: FanoutOptions,
  plan: RunPlan,
  settle: (pid: number) => void,
  released: Promise<void>,
): Promise<FanoutRun> {
  const { clients, durationS, stallFraction } = plan;
  const { server, upstream } = await startPeer(peer, o, plan);
  let tool: Child | undefined;
  try {
    const readings = plan.readings;
    await sleep(1000);
    const base = readings ? await gcRss(server) : { kb: Number.NaN, gc: false };
    const run: FanoutRun = {
      peer,
      clients,
      stallFraction,
      gc: base.gc,
      rssKb: { base: base.kb, connected: Number.NaN, subscribed: Number.NaN },
      bytesPerClient: { idle: Number.NaN, subscribed: Number.NaN },
      cpuWindowMs: Number.NaN,
      cpuMsPerHead: Number.NaN,
      peerCpuUsPerNotification: Number.NaN,
      loadgenCpuUsPerNotification: Number.NaN,
      upstreamSubscriptions: [],
      result: {},
    };
    const steps = readings ? [1, 10, 100, 1000].filter((s) => s < clients).join(',') : '';
    tool = startTool(
      'fanout-load',
      [
        '--url', `ws://127.0.0.1:${server.port}/`,
        '--clients', String(clients),
        '--duration', String(durationS),
        '--interactive',
        ...(steps !== '' ? ['--steps', steps] : []),
        '--logs',
        // 10 of the stalled clients are pushed past the cap (kernel ~4 MB + evmux 4 MB + margin).
        ...(stallFraction > 0
          ? ['--stall-fraction', String(stallFraction), '--stall-flood-mb', '12', '--stall-flood-clients', '10', '--stall-hold-ms', o.quick ? '2000' : '4000']
          : []),
        '--settle-ms', o.quick ? '800' : '1500',
        '--label', plan.label,
      ],
      '0',
    );
    let cpuStart = 0;
    const handled = new Promise<void>((resolve, reject) => {
      const t = tool;
      t?.onEvent((ev) => {
        const step = async (): Promise<void> => {
          const pid = server.child.pid;
          if (ev.event === 'connected') {
            if (readings) run.rssKb.connected = (await gcRss(server)).kb;
          } else if (ev.event === 'subscribed') {
            if (readings) run.upstreamSubscriptions.push(await readSubs(peer, server, upstream, Number(ev.subscribers), 'newHeads'));
          } else if (ev.event === 'logs-subscribed') {
            if (readings) {
              run.upstreamSubscriptions.push(await readSubs(peer, server, upstream, clients, 'logs'));
              run.rssKb.subscribed = (await gcRss(server)).kb;
            }
          } else if (ev.event === 'settled') {
            settle(pid);
            await released;
          } else if (ev.event === 'window-start') {
            cpuStart = cpuMs(pid);
          } else if (ev.event === 'window-end') {
            run.cpuWindowMs = cpuMs(pid) - cpuStart;
          } else if (ev.event === 'result') {
            run.result = ev;
            resolve();
            return;
          } else return;
          t.send({ ack: true });
        };
        step().catch(reject);
      });
    });
    const early = tool.exited.then(() => {
      throw new Error(`fanout-load exited (${tool?.exitCode ?? tool?.exitSignal}) early: ${tool?.stderrTail.slice(-500)}`);
    });
    // Besides its own window, a run may wait for the others to settle (their connects and subscribes).
    await withTimeout(Promise.race([handled, early]), (durationS + 400) * 1000, 'fan-out run');
    // Per client of those actually connected (a gateway may refuse some).
    const connected = field(run.result, 'connected');
    if (connected < clients) o.log(`${peer}: only ${connected} of ${clients} clients connected`);
    const denom = (connected > 0 ? connected : clients) * 1024;
    run.bytesPerClient.idle = round(((run.rssKb.connected - run.rssKb.base) * 1024 * 1024) / denom, 0);
    run.bytesPerClient.subscribed = round(((run.rssKb.subscribed - run.rssKb.base) * 1024 * 1024) / denom, 0);
    chargeCpu(run, run.cpuWindowMs, field(run.result, 'headsInWindow'));
    const delivered = field(run.result, 'latency.count');
    if (delivered > 0) run.loadgenCpuUsPerNotification = round((field(run.result, 'loadgenCpuMs.window') * 1000) / delivered, 2);
    if (!server.child.running) throw new Error(`${peer} exited during the run: ${server.child.stderrTail.slice(-500)}`);
    return run;
  } finally {
    if (tool?.running === true) await tool.stop(500);
    await server.child.stop();
    await upstream?.child.stop();
  }
}

/**
 * CPU per head and per notification from `ms` of the peer's CPU spent on `heads` heads: the whole
 * window's, or side by side the peer's own turns (turn-cpu.ts), at the window's notifications per head.
 */
function chargeCpu(run: FanoutRun, ms: number, heads: number): void {
  run.cpuMsPerHead = heads > 0 ? round(ms / heads, 2) : Number.NaN;
  const windowHeads = field(run.result, 'headsInWindow');
  const delivered = field(run.result, 'latency.count');
  if (heads > 0 && windowHeads > 0 && delivered > 0) run.peerCpuUsPerNotification = round((ms * 1000) / ((heads * delivered) / windowHeads), 2);
}

/** Side by side, CPU per head counts the peer's own turns only. */
function countOwnTurns(run: FanoutRun, own: TurnCpuShare): void {
  run.turnCpu = own;
  if (own.heads > 0) chargeCpu(run, own.ms, own.heads);
}

export async function runFanout(o: FanoutOptions): Promise<FanoutResult> {
  const wanted = o.quick ? 500 : 10_000;
  // Each client is a socket in the load generator and one in the peer, plus some headroom.
  const clients = Number.isFinite(o.openFilesLimit) ? Math.min(wanted, Math.max(10, o.openFilesLimit - 200)) : wanted;
  if (clients < wanted) o.log(`open files limit ${o.openFilesLimit}: fan-out uses ${clients} clients instead of ${wanted}`);
  const durationS = o.quick ? 3 : 60;
  const peers: FanoutPeer[] = o.evmux !== undefined ? ['bare', 'evmux'] : ['bare'];
  // The stalled run is the last peer again (evmux, or the baseline when evmux is missing) with
  // 1 % of its clients stalled; that peer's own unstalled run is its reference.
  const stalledPeer = peers[peers.length - 1] ?? 'bare';
  // Side by side: each member publishes in its own turns, so within one window each gets
  // durationS of heads at the full rate and meets the same moments of the machine (see chain.ts).
  const windowS = durationS * (peers.length + 1);
  const members: WindowMember[] = [
    ...peers.map((peer) => ({ peer, stallFraction: 0, label: peer, readings: true })),
    {
      peer: stalledPeer,
      stallFraction: STALL_FRACTION,
      label: `${stalledPeer}-stalled`,
      readings: false,
      // Stalled clients answer no pings, so at the default 120 s idle timeout evmux would close
      // them before the window ends and their buffer cap would go untested.
      evmuxConfig: { limits: { idleTimeoutSeconds: Math.min(960, windowS + STALLED_IDLE_MARGIN_S) } },
    },
  ];
  const turnMs = o.turnMs ?? TURN_MS;
  const genesisMs = defaultGenesisMs(INTERVAL_MS);
  const res: FanoutResult = {
    clients,
    durationS,
    intervalMs: INTERVAL_MS,
    sideBySide: { windowS, turnMs, members: members.map((m) => m.label) },
    main: {},
    stalled: {},
    errors: [],
  };
  if (o.evmux === undefined) res.errors.push('evmux: src/cli.ts not found, fan-out measured for the baseline only');
  // Each member connects and subscribes alone (the peers' memory and subscription readings), then
  // waits; the windows open together.
  const runs: PeerRun[] = [];
  const pids: (number | undefined)[] = [];
  for (const [index, { peer, ...own }] of members.entries()) {
    const run = startRun(peer, o, { ...own, clients, durationS: windowS, genesisMs, turns: { count: members.length, index, ms: turnMs } });
    runs.push(run);
    pids.push(await run.settled);
  }
  const turnCpu = new TurnCpu(pids.map((pid) => pid ?? -1), { genesisMs, intervalMs: INTERVAL_MS, turns: { ms: turnMs } });
  for (const run of runs) run.go();
  turnCpu.start();
  const meterStop = setTimeout(() => turnCpu.stop(), windowS * 1000);
  const settled = await Promise.allSettled(runs.map((run) => run.done));
  clearTimeout(meterStop);
  turnCpu.stop();
  for (const [index, m] of members.entries()) {
    const outcome = settled[index];
    if (outcome === undefined) continue;
    if (outcome.status === 'rejected') {
      res.errors.push(`fanout ${m.label}: ${outcome.reason instanceof Error ? outcome.reason.message : String(outcome.reason)}`);
      continue;
    }
    const r = outcome.value;
    countOwnTurns(r, turnCpu.share(index));
    const connected = field(r.result, 'connected');
    if (connected < clients) res.errors.push(`fanout ${m.label}: only ${connected} of ${clients} clients connected`);
    if (m.stallFraction > 0) {
      res.stalled[m.peer] = r;
      logStalled(o, r, res.main[m.peer]);
    } else {
      res.main[m.peer] = r;
      o.log(
        `fanout ${m.label}: lost ${field(r.result, 'lost')} dup ${field(r.result, 'duplicated')} ` +
          `last-client p50 ${field(r.result, 'lastClientUs.p50')} µs p99 ${field(r.result, 'lastClientUs.p99')} µs, ` +
          `${r.cpuMsPerHead} ms CPU/head, ${r.bytesPerClient.idle} / ${r.bytesPerClient.subscribed} B per client`,
      );
    }
  }
  return res;
}

function logStalled(o: FanoutOptions, r: FanoutRun, unstalled: FanoutRun | undefined): void {
  o.log(
    `stalled: others p99 ${field(r.result, 'latency.p99Us')} µs` +
      `${unstalled !== undefined ? ` (unstalled ${field(unstalled.result, 'latency.p99Us')} µs)` : ''}, ` +
      `last-client p99 ${field(r.result, 'lastClientUs.p99')} µs, ${r.cpuMsPerHead} ms CPU/head, ` +
      `stalled disconnected ${field(r.result, 'stalled.disconnected')}/${field(r.result, 'stalled.clients')}, ` +
      `flooded past the cap ${field(r.result, 'stalled.floodedDisconnected')}/${field(r.result, 'stalled.flooded')}`,
  );
}
