// Child processes for run-all: spawn (optionally pinned with taskset), read their JSON-line
// events, write control lines, sample CPU and RSS from /proc, and kill every child on exit.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readText } from './process-util.js';

const registry = new Set<Child>();
/** Every child ever started, for the crash report at the end of a run. */
export const history: Child[] = [];
const CLK_TCK = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();
export const hasTaskset = spawnSync('taskset', ['-c', '0', 'true']).status === 0;

/** Path of a sibling benchmark tool, .ts under tsx and .js when compiled to dist/bench. */
export function toolPath(name: string): string {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  return fileURLToPath(new URL(`./${name}${ext}`, import.meta.url));
}

/** Node arguments to run a .ts or .js entry point. */
export function nodeArgs(entry: string): string[] {
  return entry.endsWith('.ts') ? ['--import', 'tsx', entry] : [entry];
}

export interface SpawnOptions {
  /** CPU list for taskset -c, e.g. "1". Ignored when taskset is missing. */
  cpu?: string;
  cwd?: string;
  /**
   * For programs that do not watch their stdin (nginx, evmux): run them under reaper.ts, which
   * kills them when run-all goes away (even by SIGKILL) or after this many seconds.
   */
  maxSeconds?: number;
}

/** The processes whose parent is `ppid` (pid and command name), found through /proc. */
export function childrenOf(ppid: number): { pid: number; name: string }[] {
  const found: { pid: number; name: string }[] = [];
  try {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (parent === ppid) found.push({ pid: Number(entry), name: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) });
      } catch {
        // exited while we looked
      }
    }
  } catch {
    // no /proc
  }
  return found;
}

/**
 * The program the reaper `pid` started: its child named `comm`, else any child but esbuild (under
 * tsx the reaper has an esbuild service child too).
 */
function childOf(pid: number, comm: string): number | undefined {
  const found = childrenOf(pid);
  return (found.find((c) => c.name === comm.slice(0, 15)) ?? found.find((c) => c.name !== 'esbuild'))?.pid;
}

export class Child {
  readonly name: string;
  /** The command as spawned (after any taskset prefix), for the report. */
  readonly commandLine: string[];
  readonly proc: ChildProcess;
  readonly events: Record<string, unknown>[] = [];
  stderrTail = '';
  exitCode: number | null = null;
  exitSignal: string | null = null;
  expectedExit = false;
  readonly exited: Promise<void>;
  readonly #wrapped: boolean;
  readonly #comm: string;
  #targetPid: number | undefined;
  #waiters: { match: (e: Record<string, unknown>) => boolean; resolve: (e: Record<string, unknown>) => void }[] = [];
  #lineHandlers: ((e: Record<string, unknown>) => void)[] = [];

  constructor(name: string, cmd: string, args: string[], opts: SpawnOptions = {}) {
    this.name = name;
    this.#wrapped = opts.maxSeconds !== undefined;
    this.#comm = basename(cmd);
    const timed = this.#wrapped
      ? [process.execPath, ...nodeArgs(toolPath('reaper')), String(opts.maxSeconds), cmd, ...args]
      : [cmd, ...args];
    const line = opts.cpu !== undefined && hasTaskset ? ['taskset', '-c', opts.cpu, ...timed] : timed;
    this.commandLine = [cmd, ...args];
    this.proc = spawn(line[0] ?? cmd, line.slice(1), {
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    });
    if (opts.cpu !== undefined && hasTaskset) this.commandLine = ['taskset', '-c', opts.cpu, ...this.commandLine];
    registry.add(this);
    history.push(this);
    let rest = '';
    this.proc.stdout?.setEncoding('utf8');
    this.proc.stdout?.on('data', (chunk: string) => {
      rest += chunk;
      let nl = rest.indexOf('\n');
      while (nl >= 0) {
        this.#line(rest.slice(0, nl));
        rest = rest.slice(nl + 1);
        nl = rest.indexOf('\n');
      }
    });
    this.proc.stderr?.setEncoding('utf8');
    this.proc.stderr?.on('data', (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-4000);
    });
    this.proc.stdin?.on('error', () => undefined); // the child may exit first
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        this.exitCode = code;
        this.exitSignal = signal;
        registry.delete(this);
        resolve();
      });
    });
  }

  /** The program's pid (under the reaper, its child), for CPU, RSS and pinning. */
  get pid(): number {
    const own = this.proc.pid ?? -1;
    if (!this.#wrapped) return own;
    this.#targetPid ??= childOf(own, this.#comm);
    return this.#targetPid ?? own;
  }

  get running(): boolean {
    return this.exitCode === null && this.exitSignal === null;
  }

  /** Died on its own with an error (not killed by us, not a clean exit). */
  get crashed(): boolean {
    return !this.running && !this.expectedExit && this.exitCode !== 0;
  }

  #line(line: string): void {
    const text = line.trim();
    if (text === '') return;
    let ev: Record<string, unknown>;
    try {
      ev = JSON.parse(text) as Record<string, unknown>;
    } catch {
      this.stderrTail = (this.stderrTail + `\n[stdout] ${text}`).slice(-4000);
      return;
    }
    this.events.push(ev);
    for (const h of this.#lineHandlers) h(ev);
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.match(ev)) return true;
      w.resolve(ev);
      return false;
    });
  }

  onEvent(handler: (e: Record<string, unknown>) => void): void {
    this.#lineHandlers.push(handler);
  }

  /** The first event (past or future) matching `match`; rejects on timeout or exit. */
  waitFor(match: (e: Record<string, unknown>) => boolean, timeoutMs: number): Promise<Record<string, unknown>> {
    const seen = this.events.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no matching event within ${timeoutMs} ms`)), timeoutMs);
      const done = (e: Record<string, unknown>): void => {
        clearTimeout(timer);
        resolve(e);
      };
      this.#waiters.push({ match, resolve: done });
      this.exited.then(
        () => {
          clearTimeout(timer);
          reject(new Error(`${this.name} exited (${this.exitCode ?? this.exitSignal}) before the event: ${this.stderrTail.slice(-600)}`));
        },
        () => undefined,
      );
    });
  }

  send(msg: Record<string, unknown>): void {
    if (this.running) this.proc.stdin?.write(`${JSON.stringify(msg)}\n`);
  }

  /**
   * Stop the child and wait for it; SIGTERM first, SIGKILL after graceMs. Under the reaper only the
   * program is killed then, and the reaper reaps it and exits: killed together, the program was
   * left to init, and its CPU never reached run-all's children time (a fan-out run whose evmux
   * took over 2 s to stop reported 9 % of the machine used by other processes).
   */
  async stop(graceMs = 2000): Promise<void> {
    if (!this.running) return;
    this.expectedExit = true;
    this.proc.kill('SIGTERM');
    const program = setTimeout(() => this.#killProgram(), graceMs);
    const all = setTimeout(() => this.kill9(), graceMs + 2000);
    await this.exited;
    clearTimeout(program);
    clearTimeout(all);
  }

  #killProgram(): void {
    if (!this.#wrapped || this.pid === this.proc.pid) {
      this.proc.kill('SIGKILL');
      return;
    }
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }

  /** SIGKILL to the program and, under the reaper, to the reaper too. */
  kill9(): void {
    this.expectedExit = true;
    this.#killProgram();
    if (this.#wrapped) this.proc.kill('SIGKILL');
  }
}

/** Kill every child still running (exit path and signals). */
export function killAllChildren(): void {
  for (const c of registry) {
    c.expectedExit = true;
    try {
      c.kill9();
    } catch {
      // already gone
    }
  }
}

/** user + system CPU of a process in ms, from /proc/PID/stat (all threads). */
export function cpuMs(pid: number): number {
  const stat = readText(`/proc/${pid}/stat`);
  if (stat === undefined) return Number.NaN;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the comm field: state is index 0, utime is 11, stime is 12.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
}

/** Resident set size in KB from /proc/PID/status. */
export function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readText(`/proc/${pid}/status`) ?? '');
  return m?.[1] !== undefined ? Number(m[1]) : Number.NaN;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) {
    if (dir !== '' && existsSync(`${dir}/${cmd}`)) return `${dir}/${cmd}`;
  }
  return undefined;
}

export interface CpuSnapshot {
  atMs: number;
  /** All CPUs' busy time (user, nice, system, irq, softirq, steal) from /proc/stat. */
  busyMs: number;
  /** This process plus its reaped children (every benchmark child once it has exited). */
  oursMs: number;
}

export function cpuSnapshot(): CpuSnapshot {
  const ticks = (s: string | undefined): number => (Number(s) * 1000) / CLK_TCK;
  let busyMs = Number.NaN;
  let oursMs = Number.NaN;
  try {
    const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/);
    busyMs = [1, 2, 3, 6, 7, 8].reduce((s, i) => s + ticks(f[i]), 0);
    const self = readFileSync('/proc/self/stat', 'utf8');
    const g = self.slice(self.lastIndexOf(')') + 2).split(' ');
    // utime, stime, cutime, cstime
    oursMs = [11, 12, 13, 14].reduce((s, i) => s + ticks(g[i]), 0);
  } catch {
    // not Linux: leave NaN
  }
  return { atMs: Date.now(), busyMs, oursMs };
}

/**
 * CPU used by other processes between two snapshots taken while no benchmark child was running,
 * as % of the whole machine. Loopback softirq work charged outside our processes counts as
 * "other" too, so a few % is normal; tens of % mean the numbers were disturbed.
 */
export function interference(a: CpuSnapshot, b: CpuSnapshot, cores: number): { wallS: number; busyPct: number; otherPct: number } {
  const wall = b.atMs - a.atMs;
  const pct = (ms: number): number => Math.round((ms * 1000) / (wall * cores)) / 10;
  return {
    wallS: Math.round(wall / 100) / 10,
    busyPct: pct(b.busyMs - a.busyMs),
    otherPct: pct(Math.max(0, b.busyMs - a.busyMs - (b.oursMs - a.oursMs))),
  };
}
