// Fan-out benchmarks: N newHeads subscribers at 4 heads/s, evmux against the bare-publish
// baseline, in the same run. One run per peer also yields memory per client (idle, then with a
// newHeads and a logs subscription each), CPU per head, and upstream subscription counts as
// subscribers go 1, 10, 100, 1000, N. A second run per peer leaves 1 % of the clients stalled.
//
// Pinning: the peer alone on cpu 1; fake upstream and load generator on cpu 0.
// Memory method: the peer runs with --inspect=127.0.0.1:0; before each reading run-all calls
// HeapProfiler.collectGarbage over the inspector, waits 500 ms, then reads VmRSS from
// /proc/PID/status. Per client = (RSS with N clients − RSS before any client) / N.
// CPU method: user+system ticks of the peer from /proc/PID/stat at window start and end,
// divided by the heads in the window.
import { cpuMs, rssKb, type Child } from './children.js';
import { defaultGenesisMs } from './chain.js';
import { collectGarbage, getJson, httpGet, parseMetric } from './probe.js';
import { startBare, startEvmux, startFakeUpstream, startTool, type EvmuxCommand, type Server } from './peers.js';
import { sleep, withTimeout } from './process-util.js';
import { field, round } from './stats.js';

export type FanoutPeer = 'bare' | 'evmux';

export interface FanoutOptions {
  quick: boolean;
  evmux: EvmuxCommand | undefined;
  log: (msg: string) => void;
  /** `ulimit -n` of this process (children inherit it); fewer clients when it is too low. */
  openFilesLimit: number;
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
  cpuWindowMs: number;
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
  main: Partial<Record<FanoutPeer, FanoutRun>>;
  stalled: Partial<Record<FanoutPeer, FanoutRun>>;
  errors: string[];
}

const INTERVAL_MS = 250;

async function startPeer(peer: FanoutPeer, o: FanoutOptions): Promise<{ server: Server; upstream?: Server }> {
  const genesisMs = defaultGenesisMs(INTERVAL_MS);
  if (peer === 'bare') return { server: await startBare({ intervalMs: INTERVAL_MS, genesisMs, cpu: '1', inspect: true }) };
  if (o.evmux === undefined) throw new Error('evmux not found');
  const upstream = await startFakeUpstream({ intervalMs: INTERVAL_MS, genesisMs, cpu: '0' });
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

/** One fan-out run against one peer, driven step by step through the interactive protocol. */
async function runOne(peer: FanoutPeer, o: FanoutOptions, clients: number, durationS: number, stallFraction: number): Promise<FanoutRun> {
  const { server, upstream } = await startPeer(peer, o);
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
    const main = stallFraction === 0;
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
        '--label', `${peer}${main ? '' : '-stalled'}`,
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
    await withTimeout(Promise.race([handled, early]), (durationS + 240) * 1000, 'fan-out run');
    // Per client of those actually connected (a gateway may refuse some).
    const connected = field(run.result, 'connected');
    if (connected < clients) o.log(`${peer}: only ${connected} of ${clients} clients connected`);
    const denom = (connected > 0 ? connected : clients) * 1024;
    run.bytesPerClient.idle = round(((run.rssKb.connected - run.rssKb.base) * 1024 * 1024) / denom, 0);
    run.bytesPerClient.subscribed = round(((run.rssKb.subscribed - run.rssKb.base) * 1024 * 1024) / denom, 0);
    const heads = field(run.result, 'headsInWindow');
    run.cpuMsPerHead = heads > 0 ? round(run.cpuWindowMs / heads, 2) : Number.NaN;
    const delivered = field(run.result, 'latency.count');
    if (delivered > 0) {
      run.peerCpuUsPerNotification = round((run.cpuWindowMs * 1000) / delivered, 2);
      run.loadgenCpuUsPerNotification = round((field(run.result, 'loadgenCpuMs.window') * 1000) / delivered, 2);
    }
    if (!server.child.running) throw new Error(`${peer} exited during the run: ${server.child.stderrTail.slice(-500)}`);
    return run;
  } finally {
    if (tool?.running === true) await tool.stop(500);
    await server.child.stop();
    await upstream?.child.stop();
  }
}

export async function runFanout(o: FanoutOptions): Promise<FanoutResult> {
  const wanted = o.quick ? 500 : 10_000;
  // Each client is a socket in the load generator and one in the peer, plus some headroom.
  const clients = Number.isFinite(o.openFilesLimit) ? Math.min(wanted, Math.max(10, o.openFilesLimit - 200)) : wanted;
  if (clients < wanted) o.log(`open files limit ${o.openFilesLimit}: fan-out uses ${clients} clients instead of ${wanted}`);
  const durationS = o.quick ? 3 : 60;
  const stallDurationS = o.quick ? 2 : 30;
  const res: FanoutResult = { clients, durationS, intervalMs: INTERVAL_MS, main: {}, stalled: {}, errors: [] };
  const peers: FanoutPeer[] = o.evmux !== undefined ? ['bare', 'evmux'] : ['bare'];
  if (o.evmux === undefined) res.errors.push('evmux: src/cli.ts not found, fan-out measured for the baseline only');
  for (const peer of peers) {
    try {
      res.main[peer] = await runOne(peer, o, clients, durationS, 0);
      const r = res.main[peer];
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
  // The stalled run matters for evmux; the baseline's only runs when evmux is missing, to keep
  // the path exercised.
  const stallPeers: FanoutPeer[] = o.evmux === undefined ? ['bare'] : ['evmux'];
  for (const peer of stallPeers) {
    try {
      res.stalled[peer] = await runOne(peer, o, clients, stallDurationS, 0.01);
      const r = res.stalled[peer];
      o.log(
        `stalled ${peer}: others p99 ${field(r?.result, 'latency.p99Us')} µs, last-client p99 ${field(r?.result, 'lastClientUs.p99')} µs, ` +
          `stalled disconnected ${field(r?.result, 'stalled.disconnected')}/${field(r?.result, 'stalled.clients')}, ` +
          `flooded past the cap ${field(r?.result, 'stalled.floodedDisconnected')}/${field(r?.result, 'stalled.flooded')}`,
      );
    } catch (err) {
      res.errors.push(`stalled ${peer}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return res;
}
