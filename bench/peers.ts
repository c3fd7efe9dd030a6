// Starting the processes under test: fake upstreams, the bare-publish, bare-proxy and node-pipe
// baselines and evmux.
// Each runs as its own child process; CPU affinity can be changed between phases with pin().
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Child, freePort, hasTaskset, nodeArgs, toolPath } from './children.js';
import { SCHED_OTHER, schedulingPolicies } from '../src/runtime/helper-threads.js';
import { inspectorUrl, waitHttpOk } from './probe.js';
import { turnsFlag, type Turns } from './chain.js';

/** Move a running process (all threads) to a CPU list, e.g. "0" or "0,1". */
export function pin(pid: number, cpu: string): void {
  if (hasTaskset && pid > 0) spawnSync('taskset', ['-a', '-cp', cpu, String(pid)], { stdio: 'ignore' });
}

/**
 * Processes parked at idle CPU priority while they wait for their turn: every thread SCHED_IDLE, so
 * it runs only when its core has nothing else to do and yields it at once to a waking normal task.
 * Resuming gives normal priority back to the threads that had it (evmux keeps its helper threads
 * idle when confined to one CPU). Going back to normal needs root.
 */
export class ParkedPeers {
  readonly #saved = new Map<number, Map<number, number>>();

  park(pid: number): void {
    if (pid <= 0 || this.#saved.has(pid)) return;
    this.#saved.set(pid, schedulingPolicies(pid));
    spawnSync('chrt', ['--idle', '--all-tasks', '--pid', '0', String(pid)], { stdio: 'ignore' });
  }

  /** Restores the policies park() found; false when a thread could not be put back. */
  resume(pid: number): boolean {
    const saved = this.#saved.get(pid);
    if (saved === undefined) return true;
    this.#saved.delete(pid);
    let ok = true;
    for (const [tid, policy] of saved) {
      if (policy !== SCHED_OTHER) continue;
      const r = spawnSync('chrt', ['--other', '--pid', '0', String(tid)], { stdio: 'ignore' });
      if (r.status !== 0 && schedulingPolicies(pid).has(tid)) ok = false;
    }
    return ok;
  }
}

export interface Server {
  child: Child;
  port: number;
  /** Inspector URL when started with inspect: true (for GC before RSS readings). */
  inspector?: string;
}

export interface UpstreamOptions {
  intervalMs: number;
  genesisMs: number;
  cpu?: string;
  name?: string;
  /** heads only in this turn (chain.ts) */
  turns?: Turns;
}

/** Spawn one of the bench servers and wait for the port it announces in its 'listening' line. */
async function startServer(name: string, args: string[], cpu: string | undefined): Promise<Server> {
  const child = new Child(name, process.execPath, args, cpu !== undefined ? { cpu } : {});
  const ev = await child.waitFor((e) => e.event === 'listening', 20_000);
  return { child, port: Number(ev.port) };
}

const turnsArgs = (o: UpstreamOptions): string[] => (o.turns !== undefined ? ['--turns', turnsFlag(o.turns)] : []);

export async function startFakeUpstream(o: UpstreamOptions): Promise<Server> {
  const args = [...nodeArgs(toolPath('fake-upstream')), '--interval-ms', String(o.intervalMs), '--genesis-ms', String(o.genesisMs), ...turnsArgs(o)];
  return startServer(o.name ?? 'fake-upstream', args, o.cpu);
}

export async function startBare(o: UpstreamOptions & { inspect?: boolean }): Promise<Server> {
  const args = [
    ...(o.inspect === true ? ['--inspect=127.0.0.1:0'] : []),
    ...nodeArgs(toolPath('bare-publish')),
    '--interval-ms',
    String(o.intervalMs),
    '--genesis-ms',
    String(o.genesisMs),
    ...turnsArgs(o),
  ];
  const server = await startServer('bare-publish', args, o.cpu);
  if (o.inspect === true) {
    const url = await inspectorUrl(server.child);
    if (url !== undefined) server.inspector = url;
  }
  return server;
}

/**
 * The Node floor for calls (bare-proxy.ts) in front of one fake node. It gets evmux's node flags
 * (`nodeFlags`), so the floor and evmux run on the same V8 settings. `upstreamClient: 'lean'` makes
 * it the lean floor (the node client of the load generators in place of `ws`).
 */
export async function startBareProxy(o: { upstreamPort: number; cpu?: string; nodeFlags?: readonly string[]; upstreamClient?: 'ws' | 'lean' }): Promise<Server> {
  const args = [
    ...(o.nodeFlags ?? []),
    ...nodeArgs(toolPath('bare-proxy')),
    '--upstream',
    `ws://127.0.0.1:${o.upstreamPort}`,
    ...(o.upstreamClient !== undefined ? ['--upstream-client', o.upstreamClient] : []),
  ];
  return startServer('bare-proxy', args, o.cpu);
}

/** The Node pipe for calls (node-pipe.ts) in front of one fake node, on evmux's node flags. */
export async function startNodePipe(o: { upstreamPort: number; cpu?: string; nodeFlags?: readonly string[] }): Promise<Server> {
  const args = [...(o.nodeFlags ?? []), ...nodeArgs(toolPath('node-pipe')), '--upstream-port', String(o.upstreamPort)];
  return startServer('node-pipe', args, o.cpu);
}

export interface EvmuxCommand {
  /** Node entry point (dist/src/cli.js, or src/cli.ts run through tsx). */
  entry: string;
  /** node flags from the entry's shebang (the `evmux` command runs with them) */
  nodeFlags: readonly string[];
  display: string;
}

/** The node flags of a `#!/usr/bin/env -S node --flag ...` first line; none for `#!/usr/bin/env node`. */
export function shebangNodeFlags(entry: string): string[] {
  const first = readFileSync(entry, 'utf8').split('\n', 1)[0] ?? '';
  if (!first.startsWith('#!')) return [];
  const words = first.slice(2).trim().split(/\s+/);
  const node = words.findIndex((word) => word === 'node' || word.endsWith('/node'));
  return node < 0 ? [] : words.slice(node + 1).filter((word) => word.startsWith('--'));
}

function evmuxCommand(entry: string, shown: string, runner = ''): EvmuxCommand {
  const nodeFlags = shebangNodeFlags(entry);
  return { entry, nodeFlags, display: ['node', ...nodeFlags, runner, shown].filter((part) => part !== '').join(' ') };
}

/**
 * Find evmux: the compiled dist/src/cli.js when this suite runs compiled, else src/cli.ts via
 * tsx. EVMUX_ENTRY overrides both. Undefined while the gateway does not exist yet.
 */
export function findEvmux(): EvmuxCommand | undefined {
  const override = process.env.EVMUX_ENTRY;
  if (override !== undefined && override !== '') return evmuxCommand(override, override);
  const compiled = !import.meta.url.endsWith('.ts');
  // bench/ sits in the repo root; compiled, it sits in dist/bench/.
  const root = fileURLToPath(new URL(compiled ? '../../' : '../', import.meta.url));
  const js = `${root}dist/src/cli.js`;
  const ts = `${root}src/cli.ts`;
  if (compiled && existsSync(js)) return evmuxCommand(js, 'dist/src/cli.js');
  if (existsSync(ts)) return evmuxCommand(ts, 'src/cli.ts', '--import tsx');
  if (existsSync(js)) return evmuxCommand(js, 'dist/src/cli.js');
  return undefined;
}

export interface EvmuxOptions {
  cmd: EvmuxCommand;
  upstreams: { name: string; port: number }[];
  cpu?: string;
  inspect?: boolean;
  readyTimeoutMs?: number;
  /** settings given to evmux as a --config file (the upstreams come from the flags) */
  config?: Record<string, unknown>;
}

/** Start evmux on a free port and wait for GET /readyz to answer 200. */
export async function startEvmux(o: EvmuxOptions): Promise<Server> {
  const port = await freePort();
  // Pinned to a CPU it shares only with processes that wait on I/O (the node, a peer waiting for
  // its turn), evmux runs its helper threads at idle priority, as the Node floor and pipe do.
  const config = { helperThreads: 'auto', ...o.config };
  const configDir = mkdtempSync(join(tmpdir(), 'evmux-bench-config-'));
  writeFileSync(join(configDir, 'evmux.json'), JSON.stringify(config));
  const args = [
    ...o.cmd.nodeFlags,
    ...(o.inspect === true ? ['--inspect=127.0.0.1:0'] : []),
    ...nodeArgs(o.cmd.entry),
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    ...o.upstreams.flatMap((u) => ['--upstream', `${u.name}=ws://127.0.0.1:${u.port}`]),
    '--config',
    join(configDir, 'evmux.json'),
    '--log-level',
    'warn',
  ];
  // evmux does not watch its stdin, so it runs under the reaper in case run-all is killed.
  const child = new Child('evmux', process.execPath, args, { ...(o.cpu !== undefined ? { cpu: o.cpu } : {}), maxSeconds: 1200 });
  void child.exited.then(() => rmSync(configDir, { recursive: true, force: true }));
  const ready = await waitHttpOk(port, '/readyz', o.readyTimeoutMs ?? 30_000, child);
  if (!ready) {
    const why = child.running ? 'GET /readyz never answered 200' : `exited with ${child.exitCode ?? child.exitSignal}`;
    await child.stop(500);
    throw new Error(`evmux did not become ready: ${why}\n${child.stderrTail.slice(-1500)}`);
  }
  const server: Server = { child, port };
  if (o.inspect === true) {
    const url = await inspectorUrl(child);
    if (url !== undefined) server.inspector = url;
  }
  return server;
}

/**
 * Node flags of every load generator.
 * - --single-threaded-gc: pinned to one core, a parallel scavenge waits for helper threads that
 *   share that core, and those 1-5 ms pauses in the generator delayed sends and replies for every
 *   peer alike (the busy loop's allocations cause a scavenge every few milliseconds).
 * - --no-memory-reducer: V8's memory reducer ran a full mark-compact in the fan-out generator
 *   about 105 s after its start (62 ms atomic pause after 81 ms of marking steps), 97-99 s into
 *   the 120 s window of every run; the generator read nothing meanwhile, and the peer publishing
 *   then got the run's slowest heads (up to 480 ms last-client), which set the p99 of 240 heads.
 */
export const GENERATOR_FLAGS: readonly string[] = ['--single-threaded-gc', '--no-memory-reducer'];

/** Start a load generator tool with arguments; it runs on `cpu` and prints JSON lines. */
export function startTool(name: 'call-load' | 'fanout-load', args: string[], cpu?: string, nodeFlags: readonly string[] = []): Child {
  const argv = [...GENERATOR_FLAGS, ...nodeFlags, ...nodeArgs(toolPath(name)), ...args];
  return new Child(name, process.execPath, argv, cpu !== undefined ? { cpu } : {});
}

export interface ToolRun {
  cpu: string | undefined;
  timeoutMs: number;
  /** Sees every JSON line the tool prints. */
  onEvent?: (e: Record<string, unknown>) => void;
  /** Node flags before the tool's entry point (beyond GENERATOR_FLAGS). */
  nodeFlags?: readonly string[];
}

/** Run a load generator to completion and return its result line. */
export async function runTool(name: 'call-load' | 'fanout-load', args: string[], run: ToolRun): Promise<Record<string, unknown>> {
  const child = startTool(name, args, run.cpu, run.nodeFlags);
  if (run.onEvent !== undefined) child.onEvent(run.onEvent);
  try {
    const ev = await child.waitFor((e) => e.tool === name && e.event === 'result', run.timeoutMs);
    await child.exited;
    return ev;
  } finally {
    if (child.running) await child.stop(500);
  }
}
