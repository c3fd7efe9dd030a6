import { performance } from 'node:perf_hooks';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import { AnvilRpc } from './anvil-rpc.js';

/** Settings that must be identical on every node of one devnet (they define genesis). */
export interface AnvilGenesis {
  chainId: number;
  /** Genesis block timestamp, seconds. */
  timestamp: number;
}

export interface AnvilSpawnOptions {
  genesis: AnvilGenesis;
  host: string;
  port: number;
  /** Give up waiting for the node to answer eth_chainId. @default 10_000 */
  readyTimeoutMs?: number;
}

/**
 * Path of the anvil binary shipped by the `@foundry-rs/anvil-<platform>-<arch>` package.
 * We spawn it directly, not through the package's `bin.mjs` wrapper, so that SIGKILL hits
 * anvil itself and cannot orphan it. `ANVIL_BIN` overrides.
 */
export function anvilBinaryPath(): string {
  const fromEnv = process.env['ANVIL_BIN'];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  const binary = process.platform === 'win32' ? 'anvil.exe' : 'anvil';
  const require = createRequire(import.meta.url);
  const path = require.resolve(`@foundry-rs/anvil-${process.platform}-${arch}/bin/${binary}`);
  if (!existsSync(path)) throw new Error(`anvil binary not found at ${path}`);
  return path;
}

/**
 * Command line for one lockstep node. Everything that affects block hashes is pinned:
 * - same mnemonic (anvil's default), chain id, genesis timestamp → same genesis hash;
 * - `--no-mining`: blocks only come from our `evm_mine` calls, with explicit timestamps;
 * - `--order fifo`: transactions are included in arrival order, which we keep identical on
 *   every node, instead of by fee with ties broken by pool internals.
 * anvil's mixHash/prevrandao is derived deterministically (checked by the integration test).
 */
export function anvilArgs(genesis: AnvilGenesis, host: string, port: number): string[] {
  return [
    '--host', host,
    '--port', String(port),
    '--chain-id', String(genesis.chainId),
    '--timestamp', String(genesis.timestamp),
    '--no-mining',
    '--order', 'fifo',
    '--color', 'never',
  ];
}

/**
 * On Linux, anvil is started through util-linux's `setpriv --pdeathsig KILL`, which execs it (same
 * pid) with the kernel set to kill it when evmux dies: a kill -9 or an OOM kill runs no exit hook.
 * Elsewhere, or without setpriv, the exit hook below is all there is.
 */
function diesWithParent(): string[] {
  return process.platform === 'linux' && existsSync(SETPRIV) ? [SETPRIV, '--pdeathsig', 'KILL', '--'] : [];
}

const SETPRIV = '/usr/bin/setpriv';

// Children we must not leave behind: killed synchronously when this process exits.
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

function track(child: ChildProcess): void {
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of liveChildren) c.kill('SIGKILL');
    });
  }
}

/** Thrown when anvil exits during startup; `portInUse` tells the caller to pick another port. */
export class AnvilStartError extends Error {
  override readonly name = 'AnvilStartError';
  readonly portInUse: boolean;
  constructor(message: string, portInUse: boolean) {
    super(message);
    this.portInUse = portInUse;
  }
}

/** One anvil child process plus its RPC client. Created ready by `AnvilProcess.spawn`. */
export class AnvilProcess {
  readonly rpc: AnvilRpc;
  readonly #child: ChildProcess;
  readonly #pipes: (Readable & { ref?: () => void; unref?: () => void })[];
  readonly #exited: Promise<void>;
  #alive = true;
  #listening = false;
  #output = '';
  #spawnError: Error | undefined;

  private constructor(child: ChildProcess, rpc: AnvilRpc) {
    this.#child = child;
    this.rpc = rpc;
    this.#exited = new Promise((resolve) => {
      child.once('exit', () => {
        this.#alive = false;
      });
      // 'close' comes after 'exit' once stdio is drained, so a startup error message is complete.
      child.once('close', () => {
        this.#alive = false;
        resolve();
      });
      // A child that never started (bad binary path) emits 'error' and no 'exit'.
      child.on('error', (error) => {
        if (child.pid !== undefined) return;
        this.#spawnError = error;
        this.#alive = false;
        resolve();
      });
    });
    // Until it is listening, keep the output tail (banner or error); after that anvil logs one
    // line per request, which we drain and drop.
    this.#pipes = [child.stdout, child.stderr] as (Readable & { ref?: () => void; unref?: () => void })[];
    for (const stream of this.#pipes) {
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        if (this.#listening) return;
        this.#output = (this.#output + chunk).slice(-4000);
        if (/Listening on /.test(this.#output)) this.#listening = true;
      });
      // A forgotten devnet must not keep the parent alive; the exit hook still kills it.
      stream.unref?.();
    }
    child.unref();
  }

  static async spawn(options: AnvilSpawnOptions): Promise<AnvilProcess> {
    const { genesis, host, port, readyTimeoutMs = 10_000 } = options;
    const [command, ...args] = [...diesWithParent(), anvilBinaryPath(), ...anvilArgs(genesis, host, port)];
    const child = spawn(command!, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      // A process group of its own: a terminal's Ctrl-C (SIGINT to its foreground group) is for
      // evmux alone, whose drain still needs the nodes; they went down with it, mid-drain, with a
      // warning per socket. They still die with evmux: the exit hook, and --pdeathsig on Linux.
      detached: true,
    });
    track(child);
    const proc = new AnvilProcess(child, new AnvilRpc(host, port));
    try {
      await proc.#waitReady(genesis.chainId, readyTimeoutMs);
    } catch (error) {
      await proc.kill();
      throw error;
    }
    return proc;
  }

  get alive(): boolean {
    return this.#alive;
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** SIGKILL and wait for the exit; idempotent. */
  async kill(): Promise<void> {
    if (this.#alive) this.#child.kill('SIGKILL');
    await this.#waitExited();
    this.rpc.close();
  }

  /**
   * Wait for 'close'. The child and its pipes are unref'd so a forgotten devnet cannot keep the
   * parent alive; a caller waiting for the exit must, or the loop may end between the child's
   * exit and the pipes' EOF with this promise still pending.
   */
  async #waitExited(): Promise<void> {
    this.#child.ref();
    for (const pipe of this.#pipes) pipe.ref?.();
    await this.#exited;
  }

  /**
   * Ready = our child printed "Listening on" (so the port is ours, not another process's that
   * would also answer eth_chainId) and answers with the expected chain id.
   */
  async #waitReady(chainId: number, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!this.#listening) {
      if (this.#spawnError !== undefined) {
        throw new AnvilStartError(`cannot spawn anvil: ${this.#spawnError.message}`, false);
      }
      if (!this.#alive) {
        await this.#waitExited();
        const message = this.#output.trim().split('\n').slice(-3).join(' ') || 'anvil exited during startup';
        throw new AnvilStartError(message, /address already in use/i.test(message));
      }
      if (performance.now() > deadline) throw new AnvilStartError(`anvil not listening after ${timeoutMs} ms`, false);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const id = await this.rpc.call<string>('eth_chainId');
    if (Number(id) !== chainId) throw new AnvilStartError(`anvil answers chain id ${id}, expected ${chainId}`, false);
  }
}
