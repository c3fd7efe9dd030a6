// Runs every benchmark, each process separate, and writes bench/results/<name>.json plus the
// table in BENCHMARKS.md.
//
//   npm run bench          node dist/bench/run-all.js            (< 10 min)
//   npm run bench:quick    node dist/bench/run-all.js --quick    (< 2 min, CI: keeps tools working)
//
// Flags: --quick, --only calls,fanout,failover, --name NAME (default full / quick),
// --markdown / --no-markdown (default: on for full runs, off for quick ones),
// --calls NAME,... and --peers direct,nginx,pipe,floor,evmux (run only those call configs / peers;
// unnamed, the Node pipe runs in the open loop only and the lean floor not at all), --turn-ms MS
// (the fan-out peers' turn length).
// Exits non-zero only when a benchmark process crashes or the run hangs; numbers are reported,
// never asserted. EVMUX_ENTRY=path/to/cli.js overrides where evmux is found.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, release } from 'node:os';
import { fileURLToPath } from 'node:url';
import { cpuSnapshot, history, interference, killAllChildren } from './children.js';
import { confineKernelThreads } from './kernel-threads.js';
import { enableHaltPolling } from './halt-polling.js';
import { nginxBinary, nginxVersion } from './nginx.js';
import { findEvmux } from './peers.js';
import { haltPollingLine, kernelThreadsLine, updateBenchmarksMd, type Machine, type RunResults } from './report.js';
import { readText } from './process-util.js';
import { CALL_CONFIGS, PEER_NAMES, runCalls } from './suite-calls.js';
import { runFailover } from './suite-failover.js';
import { runFanout } from './suite-fanout.js';
import { toolArgs } from './tool-args.js';

const args = toolArgs(import.meta.url, {
  quick: { type: 'boolean', default: false },
  only: { type: 'string' },
  name: { type: 'string' },
  markdown: { type: 'boolean' },
  'no-markdown': { type: 'boolean', default: false },
  calls: { type: 'string' },
  peers: { type: 'string' },
  'turn-ms': { type: 'string' },
});
const quick = args.quick;
/**
 * A comma-separated flag's items; undefined when the flag is absent. A name it does not know stops
 * the run: a typo would otherwise run nothing (or only the baseline) and look like a result.
 */
function list(flag: string, value: string | undefined, known: readonly string[]): string[] | undefined {
  const items = value?.split(',').map((s) => s.trim());
  const unknown = items?.filter((item) => !known.includes(item)) ?? [];
  if (unknown.length > 0) {
    process.stderr.write(`run-all: unknown ${flag} ${unknown.map((u) => JSON.stringify(u)).join(', ')}; known: ${known.join(', ')}\n`);
    process.exit(2);
  }
  return items;
}
const SUITES = ['calls', 'fanout', 'failover'];
const only = new Set(list('--only', args.only, SUITES) ?? SUITES);
const callNames = list('--calls', args.calls, CALL_CONFIGS.map((c) => c.name));
const peerNames = list('--peers', args.peers, PEER_NAMES);
/** A positive number flag; anything else stops the run before it starts, naming the flag. */
function positive(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) {
    process.stderr.write(`run-all: ${flag} must be a positive number, got ${JSON.stringify(value)}\n`);
    process.exit(2);
  }
  return n;
}
const turnMs = positive('--turn-ms', args['turn-ms']);
const name = args.name ?? (quick ? 'quick' : 'full');
const writeMarkdown = args['no-markdown'] ? false : (args.markdown ?? !quick);
const ROOT = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '../' : '../../', import.meta.url));
const started = Date.now();
const log = (msg: string): void => {
  process.stderr.write(`[bench +${Math.round((Date.now() - started) / 1000)}s] ${msg}\n`);
};

function machine(): Machine {
  const cpuinfo = readText('/proc/cpuinfo') ?? '';
  const nginx = nginxBinary();
  return {
    nproc: availableParallelism(),
    cpuModel: /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1]?.trim() ?? 'unknown',
    kernel: release(),
    node: process.version,
    nginx: nginx !== undefined ? nginxVersion(nginx) : null,
    openFilesLimit: spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim(),
  };
}

/** The machine's online CPUs as the kernel lists them (e.g. "0-1"). */
function onlineCpus(nproc: number): string {
  return readText('/sys/devices/system/cpu/online')?.trim() ?? `0-${nproc - 1}`;
}

/** What the run changed on the machine (kernel thread affinity, halt polling), each put back once. */
const machineUndos: (() => void)[] = [];
const restoreMachine = (): void => {
  for (const undo of machineUndos.splice(0).reverse()) undo();
};

/** The distinct command lines this run spawned, with ports and temp paths made generic. */
function commands(): string[] {
  const seen = new Set<string>();
  for (const c of history) {
    const line = c.commandLine
      .map((a) => (a === process.execPath ? 'node' : a.startsWith(ROOT) ? a.slice(ROOT.length) : a))
      .join(' ')
      .replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:PORT')
      .replace(/--(port|genesis-ms|upstream-port) \d+/g, '--$1 N')
      .replace(/\/tmp\/evmux-bench-(nginx|config)-\w+/g, 'TMPDIR')
      .replace(/--label \S+ ?/g, '')
      .replace(/'?daemon off;'?/, "'daemon off;'");
    seen.add(line.trim());
  }
  return [...seen];
}

async function main(): Promise<number> {
  const evmux = findEvmux();
  log(`${quick ? 'quick' : 'full'} run; evmux: ${evmux?.display ?? 'not found'}; nginx: ${nginxBinary() ?? 'missing'}`);
  const results: RunResults = {
    name,
    mode: quick ? 'quick' : 'full',
    date: new Date().toISOString(),
    durationS: 0,
    machine: machine(),
    commands: [],
    evmux: evmux?.display ?? null,
    calls: null,
    fanout: null,
    failover: null,
    kernelThreads: null,
    haltPolling: null,
    crashes: [],
    errors: [],
    interference: {},
  };
  const step = async <T>(what: string, fn: () => Promise<T>): Promise<T | null> => {
    try {
      return await fn();
    } catch (err) {
      results.errors.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
      log(`${what} failed: ${err instanceof Error ? err.message : String(err)}`);
      return null;
    }
  };
  // Each suite stops its children before returning, so their CPU is in our cutime/cstime at the
  // boundaries and whatever else the machine did in between is other processes' load.
  const suite = async <T>(what: keyof RunResults['interference'], fn: () => Promise<T>): Promise<T | null> => {
    const a = cpuSnapshot();
    const r = await step(what, fn);
    results.interference[what] = interference(a, cpuSnapshot(), results.machine.nproc);
    const other = results.interference[what]?.otherPct ?? 0;
    if (other > 5) log(`warning: other processes used ${other} % of the machine during ${what}; numbers are disturbed`);
    return r;
  };
  // With two or more CPUs the load generators own cpu 0; kernel threads go there too (kernel-threads.ts).
  if (results.machine.nproc >= 2) {
    const confined = confineKernelThreads('0', onlineCpus(results.machine.nproc));
    results.kernelThreads = confined.result;
    machineUndos.push(confined.undo);
    log(kernelThreadsLine(confined.result));
  }
  const polling = enableHaltPolling();
  results.haltPolling = polling.result;
  machineUndos.push(polling.undo);
  log(haltPollingLine(polling.result));
  if (only.has('calls')) results.calls = await suite('calls', () => runCalls({ quick, evmux, log, configs: callNames, peers: peerNames }));
  if (only.has('fanout')) results.fanout = await suite('fanout', () => runFanout({ quick, evmux, log, openFilesLimit: Number(results.machine.openFilesLimit), ...(turnMs !== undefined && { turnMs }) }));
  if (only.has('failover')) results.failover = await suite('failover', () => runFailover({ quick, evmux, log }));
  restoreMachine();
  for (const part of [results.calls, results.fanout, results.failover]) results.errors.push(...(part?.errors ?? []));

  results.crashes = history
    .filter((c) => c.crashed)
    .map((c) => `${c.name} (pid ${c.pid}) exited with ${c.exitCode ?? c.exitSignal}: ${c.stderrTail.slice(-800)}`);
  results.durationS = (Date.now() - started) / 1000;
  results.commands = commands();
  mkdirSync(`${ROOT}bench/results`, { recursive: true });
  const out = `${ROOT}bench/results/${name}.json`;
  writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
  log(`wrote ${out}`);
  if (writeMarkdown && results.calls === null && results.fanout === null && results.failover === null) {
    log('no suite produced results: BENCHMARKS.md left as it was');
  } else if (writeMarkdown) {
    updateBenchmarksMd(`${ROOT}BENCHMARKS.md`, results);
    log('updated BENCHMARKS.md');
  }
  for (const e of results.errors) log(`error: ${e.split('\n')[0]}`);
  for (const c of results.crashes) log(`CRASH: ${c}`);
  log(`done in ${Math.round(results.durationS)} s`);
  return results.crashes.length > 0 ? 1 : 0;
}

// Whatever happens, no child outlives the run and the kernel threads and halt polling go back.
process.on('exit', () => {
  killAllChildren();
  restoreMachine();
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    killAllChildren();
    process.exit(130);
  });
}
const watchdog = setTimeout(
  () => {
    log(`watchdog: run exceeded its time budget, killing children`);
    killAllChildren();
    process.exit(2);
  },
  (quick ? 240 : 900) * 1000,
);
watchdog.unref();

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(`run-all crashed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    killAllChildren();
    process.exit(1);
  },
);
