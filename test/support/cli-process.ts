/**
 * The evmux command as a child process for tests: `node <young-generation flags> --import tsx
 * src/cli.ts ...` in the repo root (the flags the command's shebang passes), with its output
 * collected, its exit awaited with a deadline, and its listening port read from the "evmux
 * listening" log line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { YOUNG_GENERATION_FLAGS } from '../../src/runtime/young-generation.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** node's flags @default the young-generation flags the command's shebang passes */
  nodeFlags?: readonly string[];
  /** runs node, e.g. ['taskset', '-c', '0'] (it must exec, so the pid is node's) */
  launcher?: readonly string[];
  /** variables added to this process's environment */
  env?: Record<string, string>;
  /** a file descriptor for its stdout instead of a pipe read here (port() then cannot read the port) */
  stdout?: number;
}

export class CliProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<Exit>;

  constructor(args: string[], options: CliOptions = {}) {
    const { nodeFlags = YOUNG_GENERATION_FLAGS, launcher = [], env = {}, stdout = 'pipe' } = options;
    const argv = [...launcher, process.execPath, ...nodeFlags, '--import', 'tsx', 'src/cli.ts', ...args];
    this.child = spawn(argv[0]!, argv.slice(1), { cwd: REPO, stdio: ['ignore', stdout, 'pipe'], env: { ...process.env, ...env } });
    this.child.stdout?.on('data', (chunk: Buffer) => (this.stdout += chunk.toString()));
    this.child.stderr?.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.exited = new Promise((resolve) => {
      this.child.once('close', (code, signal) => resolve({ code, signal, stdout: this.stdout, stderr: this.stderr }));
    });
  }

  /** Start the command; killed when the test ends if still running. */
  static start(t: TestContext, args: string[], options?: CliOptions): CliProcess {
    const cli = new CliProcess(args, options);
    t.after(() => {
      if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill('SIGKILL');
    });
    return cli;
  }

  /** Exit within `ms`, else kill it and fail naming what it printed. */
  async exit(ms: number): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.child.kill('SIGKILL');
        reject(new Error(`evmux did not exit within ${ms} ms\nstdout: ${this.stdout}\nstderr: ${this.stderr}`));
      }, ms);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The port from the "evmux listening" log line. */
  async port(ms = 10_000): Promise<number> {
    const deadline = Date.now() + ms;
    for (;;) {
      const match = /"port":(\d+)[^\n]*"msg":"evmux listening"/.exec(this.stdout);
      if (match) return Number(match[1]);
      if (this.child.exitCode !== null) throw new Error(`evmux exited with ${this.child.exitCode}: ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`evmux did not log its port within ${ms} ms\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/** A temporary directory with the given files, removed when the test ends; returns its path. */
export function tempFiles(t: TestContext, files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'evmux-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}
