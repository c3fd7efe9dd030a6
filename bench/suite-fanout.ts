// Fan-out benchmarks: N newHeads subscribers at 4 heads/s, evmux against the bare-publish
// baseline, in the same run. Both peers run side by side in one window and take turns (0.5 s
// each: two heads) publishing, each at 4 heads/s in its turns (chain.ts), so a slow moment of the
// machine, which lasts seconds, lands on both alike; each gets durationS of heads. Each peer connects and subscribes its
// clients alone first, which yields memory per client (idle, then with a newHeads and a logs
// subscription each) and upstream subscription counts as subscribers go 1, 10, 100, 1000, N.
// Then two more evmux runs side by side, taking turns the same way: one leaves 1 % of its clients
// stalled, the other (the reference) has every client reading.
//
// Pinning: the peers on cpu 1 (one publishes while the other waits for its turn); fake upstream
// and load generators on cpu 0.
// Memory method: the peer runs with --inspect=127.0.0.1:0; before each reading run-all calls
// HeapProfiler.collectGarbage over the inspector, waits 500 ms, then reads VmRSS from
// /proc/PID/status. Per client = (RSS with N clients − RSS before any client) / N.
// CPU method: user+system ticks of the peer from /proc/PID/stat, side by side at every turn
// boundary and summed over the peer's own turns (turn-cpu.ts), divided by the heads of those
// turns; a peer alone, at window start and end, divided by the heads in the window.
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
  /** Peers measured in one window of windowS, taking turns of turnMs (null: one peer alone). */
  sideBySide: { windowS: number; turnMs: number } | null;
  main: Partial<Record<FanoutPeer, FanoutRun>>;
  stalled: Partial<Record<FanoutPeer, FanoutRun>>;
  /** the unstalled evmux measured side by side with the stalled one (absent in older results) */
  stalledReference?: FanoutRun;
  errors: string[];
}

const INTERVAL_MS = 250;

async function startPeer(peer: FanoutPeer, o: FanoutOptions, plan: RunPlan): Promise<{ server: Server; upstream?: Server }> {
  const chain = { intervalMs: INTERVAL_MS, genesisMs: plan.genesisMs, ...(plan.turns !== undefined && { turns: plan.turns }) };
  if (peer === 'bare') return { server: await startBare({ ...chain, cpu: '1', inspect: true }) };
  if (o.evmux === undefined) throw new Error('evmux not found');
  const upstream = await startFakeUpstream({ ...chain, cpu: '0' });
  try {
    const server = await startEvmux({ cmd: o.evmux, upstreams: [{ name: 'node', port: upstream.port }], cpu: '1', inspect: true });
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
  /** memory and subscription readings (steps of subscribers, a logs subscription) before the window */
  readings: boolean;
  label: string;
  genesisMs: number;
  /** the peer's share of the heads when peers run side by side (chain.ts) */
  turns?: Turns;
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
    await sleep(1000);
    const base = await gcRss(server);
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
    const main = plan.readings;
    const steps = main ? [1, 10, 100, 1000].filter((s) => s < clients).join(',') : '';
    tool = startTool(
      'fanout-load',
      [
        '--url', `ws://127.0.0.1:${server.port}/`,
        '--clients', String(clients),
        '--duration', String(durationS),
        '--interactive',
        ...(steps !== '' ? ['--steps', steps] : []),
        ...(main ? ['--logs'] : []),
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
            const r = await gcRss(server);
            run.rssKb.connected = r.kb;
          } else if (ev.event === 'subscribed') {
            run.upstreamSubscriptions.push(await readSubs(peer, server, upstream, Number(ev.subscribers), 'newHeads'));
          } else if (ev.event === 'logs-subscribed') {
            run.upstreamSubscriptions.push(await readSubs(peer, server, upstream, clients, 'logs'));
            const r = await gcRss(server);
            run.rssKb.subscribed = r.kb;
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
  const stallDurationS = o.quick ? 2 : 25;
  const peers: FanoutPeer[] = o.evmux !== undefined ? ['bare', 'evmux'] : ['bare'];
  // Side by side: each peer publishes in its own turns, so within one window both get durationS
  // of heads at the full rate and meet the same moments of the machine (see chain.ts).
  const turnMs = o.turnMs ?? TURN_MS;
  const windowS = durationS * peers.length;
  const genesisMs = defaultGenesisMs(INTERVAL_MS);
  const plan = (d: number, stallFraction: number, label: string, how: { turn?: { index: number; of: number }; readings?: boolean } = {}): RunPlan => ({
    clients,
    durationS: d,
    stallFraction,
    readings: how.readings === true,
    label,
    genesisMs,
    ...(how.turn !== undefined && { turns: { count: how.turn.of, index: how.turn.index, ms: turnMs } }),
  });
  const res: FanoutResult = {
    clients,
    durationS,
    intervalMs: INTERVAL_MS,
    sideBySide: peers.length > 1 ? { windowS, turnMs } : null,
    main: {},
    stalled: {},
    errors: [],
  };
  if (o.evmux === undefined) res.errors.push('evmux: src/cli.ts not found, fan-out measured for the baseline only');
  // Each peer connects and subscribes alone (its memory and subscription readings), then waits.
  const runs: [FanoutPeer, PeerRun][] = [];
  const pids: (number | undefined)[] = [];
  for (const peer of peers) {
    const turn = { index: peers.indexOf(peer), of: peers.length };
    const run = startRun(peer, o, plan(windowS, 0, peer, { readings: true, ...(peers.length > 1 && { turn }) }));
    runs.push([peer, run]);
    pids.push(await run.settled);
  }
  const turnCpu = peers.length > 1 ? new TurnCpu(pids.map((pid) => pid ?? -1), { genesisMs, intervalMs: INTERVAL_MS, turns: { ms: turnMs } }) : undefined;
  for (const [, run] of runs) run.go();
  turnCpu?.start();
  const meterStop = setTimeout(() => turnCpu?.stop(), windowS * 1000);
  for (const [peer, run] of runs) {
    try {
      res.main[peer] = await run.done;
      const r = res.main[peer];
      if (r !== undefined && turnCpu !== undefined) countOwnTurns(r, turnCpu.share(peers.indexOf(peer)));
      const connected = field(r?.result, 'connected');
      if (connected < clients) res.errors.push(`fanout ${peer}: only ${connected} of ${clients} clients connected`);
      o.log(
        `fanout ${peer}: lost ${field(r?.result, 'lost')} dup ${field(r?.result, 'duplicated')} ` +
          `last-client p50 ${field(r?.result, 'lastClientUs.p50')} µs p99 ${field(r?.result, 'lastClientUs.p99')} µs, ` +
          `${r?.cpuMsPerHead} ms CPU/head, ${r?.bytesPerClient.idle} / ${r?.bytesPerClient.subscribed} B per client`,
      );
    } catch (err) {
      res.errors.push(`fanout ${peer}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  clearTimeout(meterStop);
  turnCpu?.stop();
  // The stalled run matters for evmux; the baseline's only runs when evmux is missing, to keep
  // the path exercised.
  try {
    if (o.evmux === undefined) {
      const run = startRun('bare', o, plan(stallDurationS, 0.01, 'bare-stalled'));
      run.go();
      res.stalled.bare = await run.done;
    } else {
      // Side by side with a second evmux whose clients all read, taking turns as in the main
      // window: the two p99s compared come from the same moments of the machine. Measured against
      // the main window instead, a slow stretch in either window set the ratio (0.34-1.23 ×).
      const turns = 2;
      const reference = startRun('evmux', o, plan(stallDurationS * turns, 0, 'evmux-reference', { turn: { index: 0, of: turns } }));
      await reference.settled;
      const stalled = startRun('evmux', o, plan(stallDurationS * turns, 0.01, 'evmux-stalled', { turn: { index: 1, of: turns } }));
      await stalled.settled;
      reference.go();
      stalled.go();
      const [ref, st] = await Promise.allSettled([reference.done, stalled.done]);
      if (ref.status === 'fulfilled') res.stalledReference = ref.value;
      else throw ref.reason;
      if (st.status === 'fulfilled') res.stalled.evmux = st.value;
      else throw st.reason;
    }
    const r = res.stalled.evmux ?? res.stalled.bare;
    o.log(
      `stalled: others p99 ${field(r?.result, 'latency.p99Us')} µs` +
        `${res.stalledReference !== undefined ? ` (unstalled side by side ${field(res.stalledReference.result, 'latency.p99Us')} µs)` : ''}, ` +
        `last-client p99 ${field(r?.result, 'lastClientUs.p99')} µs, ` +
        `stalled disconnected ${field(r?.result, 'stalled.disconnected')}/${field(r?.result, 'stalled.clients')}, ` +
        `flooded past the cap ${field(r?.result, 'stalled.floodedDisconnected')}/${field(r?.result, 'stalled.flooded')}`,
    );
  } catch (err) {
    res.errors.push(`stalled: ${err instanceof Error ? err.message : String(err)}`);
  }
  return res;
}
