// Failover: two fake upstreams serving the same chain (same seed and genesis, 250 ms blocks),
// evmux in front of both, newHeads subscribers spread over them by evmux's ring. Mid-window the
// upstream holding the most subscriptions is killed with SIGKILL (clients come from 16 source
// addresses, so evmux's ring spreads their sessions over both nodes); each client reports the time
// from the kill to its first notification after it, and every lost or duplicated height.
import { defaultGenesisMs, monoMicros } from './chain.js';
import { getJson, httpGet, parseMetric } from './probe.js';
import { startEvmux, startFakeUpstream, startTool, type EvmuxCommand, type Server } from './peers.js';
import { sleep, withTimeout } from './process-util.js';
import { field, median, round } from './stats.js';

export interface FailoverOptions {
  quick: boolean;
  evmux: EvmuxCommand | undefined;
  log: (msg: string) => void;
}

export interface FailoverRun {
  killed: string;
  subscriptionsBefore: Record<string, number>;
  firstAfterKillMs: { min: number; p50: number; p99: number; max: number };
  neverAfterKill: number;
  lost: number;
  duplicated: number;
  failoversMetric: number | null;
  replayedMetric: number | null;
  result: Record<string, unknown>;
}

export interface FailoverResult {
  available: boolean;
  intervalMs: number;
  clients: number;
  runs: FailoverRun[];
  median: { firstAfterKillMaxMs: number; firstAfterKillP50Ms: number; failoverExtraMs: number; lost: number; duplicated: number } | null;
  errors: string[];
}

const INTERVAL_MS = 250;

async function metricSum(port: number, name: string): Promise<number | null> {
  try {
    const text = (await httpGet(port, '/metrics')).body;
    const samples = parseMetric(text, name);
    return samples.length === 0 ? null : samples.reduce((s, x) => s + x.value, 0);
  } catch {
    return null;
  }
}

async function runOnce(o: FailoverOptions, cmd: EvmuxCommand, clients: number): Promise<FailoverRun> {
  const genesisMs = defaultGenesisMs(INTERVAL_MS);
  const ups: Record<string, Server> = {
    a: await startFakeUpstream({ intervalMs: INTERVAL_MS, genesisMs, cpu: '0', name: 'upstream-a' }),
    b: await startFakeUpstream({ intervalMs: INTERVAL_MS, genesisMs, cpu: '0', name: 'upstream-b' }),
  };
  let evmux: Server | undefined;
  const windowS = o.quick ? 4 : 6;
  try {
    evmux = await startEvmux({
      cmd,
      upstreams: Object.entries(ups).map(([name, s]) => ({ name, port: s.port })),
      cpu: '1',
    });
    await sleep(1500); // both upstream connections up
    const tool = startTool(
      'fanout-load',
      ['--url', `ws://127.0.0.1:${evmux.port}/`, '--clients', String(clients), '--duration', String(windowS), '--interactive', '--settle-ms', '1000', '--sources', '16', '--label', 'failover'],
      '0',
    );
    let killed = '';
    const before: Record<string, number> = {};
    const done = new Promise<Record<string, unknown>>((resolve, reject) => {
      tool.onEvent((ev) => {
        const step = async (): Promise<void> => {
          if (ev.event === 'result') return resolve(ev);
          tool.send({ ack: true });
          if (ev.event !== 'window-start') return;
          await sleep(1500);
          for (const [name, s] of Object.entries(ups)) {
            const st = await getJson(s.port, '/stats').catch(() => ({}) as Record<string, unknown>);
            before[name] = field(st, 'subscriptions.newHeads');
          }
          killed = (before.b ?? 0) > (before.a ?? 0) ? 'b' : 'a';
          const markUs = monoMicros();
          ups[killed]?.child.kill9();
          tool.send({ mark: markUs });
        };
        step().catch(reject);
      });
    });
    const early = tool.exited.then(() => {
      throw new Error(`fanout-load exited early: ${tool.stderrTail.slice(-500)}`);
    });
    const result = await withTimeout(Promise.race([done, early]), (windowS + 90) * 1000, 'failover run');
    await tool.exited;
    return {
      killed,
      subscriptionsBefore: before,
      firstAfterKillMs: {
        min: field(result, 'failover.firstAfterMarkMs.min'),
        p50: field(result, 'failover.firstAfterMarkMs.p50'),
        p99: field(result, 'failover.firstAfterMarkMs.p99'),
        max: field(result, 'failover.firstAfterMarkMs.max'),
      },
      neverAfterKill: field(result, 'failover.neverAfterMark'),
      lost: field(result, 'lost'),
      duplicated: field(result, 'duplicated'),
      failoversMetric: await metricSum(evmux.port, 'evmux_failovers_total'),
      replayedMetric: await metricSum(evmux.port, 'evmux_replayed_notifications_total'),
      result,
    };
  } finally {
    await evmux?.child.stop();
    for (const s of Object.values(ups)) await s.child.stop();
  }
}

export async function runFailover(o: FailoverOptions): Promise<FailoverResult> {
  const clients = o.quick ? 50 : 200;
  const res: FailoverResult = { available: o.evmux !== undefined, intervalMs: INTERVAL_MS, clients, runs: [], median: null, errors: [] };
  if (o.evmux === undefined) {
    res.errors.push('evmux: src/cli.ts not found, failover not measured');
    return res;
  }
  const reps = o.quick ? 1 : 3;
  for (let i = 0; i < reps; i++) {
    try {
      const run = await runOnce(o, o.evmux, clients);
      res.runs.push(run);
      o.log(
        `failover: killed ${run.killed} (subs ${JSON.stringify(run.subscriptionsBefore)}), first after kill min ` +
          `${run.firstAfterKillMs.min} p50 ${run.firstAfterKillMs.p50} max ${run.firstAfterKillMs.max} ms, lost ${run.lost}, dup ${run.duplicated}`,
      );
    } catch (err) {
      res.errors.push(`failover: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (res.runs.length > 0) {
    res.median = {
      firstAfterKillMaxMs: round(median(res.runs.map((r) => r.firstAfterKillMs.max))),
      firstAfterKillP50Ms: round(median(res.runs.map((r) => r.firstAfterKillMs.p50))),
      failoverExtraMs: round(median(res.runs.map((r) => r.firstAfterKillMs.max - r.firstAfterKillMs.min))),
      lost: res.runs.reduce((s, r) => s + r.lost, 0),
      duplicated: res.runs.reduce((s, r) => s + r.duplicated, 0),
    };
  }
  return res;
}
