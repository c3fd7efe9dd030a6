// Instructions per proxied call, counted by valgrind's callgrind. Unlike CPU time, the count does not
// depend on what else the machine is doing or how fast its cores run this hour: the same build gives
// the same count within about 0.5 %, so a change worth 1 % of a call shows. It counts user space only
// (the kernel's share of a call, its socket syscalls, is the same for every Node peer).
//
//   node dist/bench/instructions.js [--peer evmux|floor|lean-floor|pipe] [--transport ws|http] [--method small|block]
//                                   [--warmup-s 20] [--measure-s 15] [--entry dist/src/cli.js]
//                                   [--cache-sim] [--functions 30]
//
// The peer runs under valgrind in front of a fake node; call-load makes 2 x 1 calls in flight (so
// each event-loop turn carries one call, like the open-loop benchmark) for the warm-up (until V8 has
// optimized the call path), then callgrind's counters are zeroed, the measured calls run, and the
// counters are dumped. Counted: the main thread, where calls are handled (V8's compiler and GC
// helpers run beside it at idle priority); each thread and all threads are reported too. Under
// valgrind 20 s of warm-up is only ~6,000 calls, so the helper threads' count still holds
// TurboFan compiles. Prints one JSON line; EVMUX_CALLGRIND_KEEP=1 keeps the dumps (their
// directory goes to stderr) for callgrind_annotate.
// --cache-sim adds callgrind's cache simulator: L1 instruction and data misses per call
// (I1mr, D1mr, D1mw). It runs the peer ~1.5 times slower, so give it more warm-up (70 s).
// --functions N names where the main thread's cost goes: the N functions with the most
// instructions (and misses, with --cache-sim) per call, V8's generated code by name
// (callgrind-functions.ts), and the totals by origin (evmux's modules, ws, Node's streams, V8's
// builtins, native code). A share of Sparkplug code ("JS:^") in it means the warm-up was short.
// Needs valgrind (Debian package valgrind); slow: about a minute per run.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Child, freePort, killAllChildren, which } from './children.js';
import { COUNTED_PEER_FLAGS, PEER_V8_FLAGS, countedPeer, countedTransport, peerProgram, untilAnswering } from './counted-peer.js';
import { functionCosts, PerfMap, summarize } from './callgrind-functions.js';
import { startFakeUpstream, runTool } from './peers.js';
import { emit, num, sleep } from './process-util.js';
import { toolArgs } from './tool-args.js';

const args = toolArgs(import.meta.url, {
  ...COUNTED_PEER_FLAGS,
  'cache-sim': { type: 'boolean', default: false },
  functions: { type: 'string' },
});
const peer = countedPeer(args.peer);
const transport = countedTransport(args.transport);
const warmupS = num(args['warmup-s'], 20, 'warmup-s');
const measureS = num(args['measure-s'], 15, 'measure-s');
const functions = args.functions === undefined ? undefined : num(args.functions, 30, 'functions');
const cacheSim = args['cache-sim'] === true;
if (which('valgrind') === undefined || which('callgrind_control') === undefined) throw new Error('valgrind is not installed (Debian package valgrind)');

const dir = mkdtempSync(join(tmpdir(), 'evmux-callgrind-'));
const node = await startFakeUpstream({ intervalMs: 1000, genesisMs: Date.now() });
const port = await freePort();
const program = peerProgram(peer, port, node.port, args.entry);
const valgrind = new Child(
  'valgrind',
  'valgrind',
  [
    '--tool=callgrind',
    '--separate-threads=yes',
    ...(cacheSim ? ['--cache-sim=yes'] : []),
    ...(functions !== undefined ? ['--dump-instr=yes'] : []),
    `--callgrind-out-file=${join(dir, 'cg.out.%p')}`,
    process.execPath,
    // The perf map goes to /tmp/perf-<pid>.map; the log V8 writes beside it, into the dumps' directory.
    ...(functions !== undefined ? ['--perf-basic-prof', '--no-logfile-per-isolate', `--logfile=${join(dir, 'v8.log')}`] : []),
    ...PEER_V8_FLAGS,
    ...program,
  ],
  { maxSeconds: 900 },
);

try {
  const url = `${transport}://127.0.0.1:${port}/`;
  await untilAnswering(url, 180_000, () => (valgrind.running ? undefined : `the peer exited under valgrind:\n${valgrind.stderrTail.slice(-1500)}`));
  const load = (seconds: number): Promise<Record<string, unknown>> =>
    runTool('call-load', ['--url', url, '--mode', 'closed', '--conns', '2', '--inflight', '1', '--method', args.method, '--duration', String(seconds), '--warmup', '0'], {
      cpu: undefined,
      timeoutMs: (seconds + 60) * 1000,
    });
  await load(warmupS);
  control('-z');
  const measured = await load(measureS);
  control('-d');
  await sleep(1000);
  const requests = Number(measured.requests);
  const dumps = readdirSync(dir).filter((name) => /\.1-\d+$/.test(name));
  const counts = dumps.map((name) => ({ thread: Number(name.slice(name.lastIndexOf('-') + 1)), file: join(dir, name), ...summary(join(dir, name)) }));
  const mainDump = counts.find((c) => c.thread === 1);
  if (mainDump === undefined) throw new Error(`no main-thread dump in ${dir}`);
  const main = mainDump.ir;
  const all = counts.reduce((sum, c) => sum + c.ir, 0);
  emit({
    event: 'result',
    tool: 'instructions',
    peer,
    transport,
    warmupS,
    measureS,
    requests,
    mainThreadPerCall: Math.round(main / requests),
    allThreadsPerCall: Math.round(all / requests),
    // Thread 1 is the main thread; the others are V8's GC and compiler helpers and libuv's pool.
    perThreadPerCall: Object.fromEntries(counts.sort((a, b) => a.thread - b.thread).map((c) => [c.thread, Math.round(c.ir / requests)])),
    ...(cacheSim && { mainThreadMissesPerCall: Object.fromEntries(['I1mr', 'D1mr', 'D1mw'].map((e) => [e, Math.round((mainDump.events[e] ?? 0) / requests)])) }),
    ...(functions !== undefined && { mainThreadFunctions: summarize(functionCosts(mainDump.file, new PerfMap(readFileSync(perfMapOf(valgrind.pid), 'utf8'))), requests, functions) }),
  });
} finally {
  await valgrind.stop(5000);
  await node.child.stop(1000);
  killAllChildren();
  if (process.env.EVMUX_CALLGRIND_KEEP === undefined) {
    rmSync(dir, { recursive: true, force: true });
    rmSync(perfMapOf(valgrind.pid), { force: true });
  } else process.stderr.write(`callgrind dumps kept in ${dir}\n`);
}

/** Where the peer's --perf-basic-prof names its generated code (valgrind runs it in its own process). */
function perfMapOf(pid: number | undefined): string {
  return `/tmp/perf-${pid}.map`;
}

function control(flag: string): void {
  const result = spawnSync('callgrind_control', [flag, String(valgrind.pid)], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`callgrind_control ${flag} failed: ${result.stderr}`);
}

/** The dump's totals (its `summary:` line, named by its `events:` line): instructions, and misses with --cache-sim. */
function summary(file: string): { ir: number; events: Record<string, number> } {
  const lines = readFileSync(file, 'utf8').split('\n');
  const names = lines.find((l) => l.startsWith('events:'))?.split(/\s+/).slice(1);
  const totals = lines.find((l) => l.startsWith('summary:'))?.split(/\s+/).slice(1);
  if (names === undefined || totals === undefined) throw new Error(`${file} has no events or summary line`);
  const events = Object.fromEntries(names.map((name, i) => [name, Number(totals[i] ?? 0)]));
  return { ir: events.Ir ?? 0, events };
}
