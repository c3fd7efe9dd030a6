// Small helpers every benchmark process shares: number flags, JSON-line output, reading kernel
// files, and a lifetime bound so that no benchmark child outlives its orchestrator.
import { fstatSync, readFileSync } from 'node:fs';

/** A /proc or /sys file's text; undefined when it cannot be read (gone, not Linux, no access). */
export function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Parse a numeric flag; throws with the flag name so a typo fails loudly. */
export function num(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got ${JSON.stringify(value)}`);
  return n;
}

/** One JSON object per stdout line: the protocol between benchmark children and run-all. */
export function emit(obj: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

/**
 * Exit when the parent goes away (stdin is a pipe from run-all and reaches EOF) or after
 * maxSeconds, whichever comes first. `onExit` gets a chance to close listeners.
 */
export function boundLifetime(maxSeconds: number, onExit: () => void): void {
  const stop = (): void => {
    try {
      onExit();
    } finally {
      process.exit(0);
    }
  };
  const timer = setTimeout(() => {
    process.stderr.write(`${process.argv[1] ?? 'bench'}: lifetime of ${maxSeconds}s reached, exiting\n`);
    stop();
  }, maxSeconds * 1000);
  timer.unref();
  if (stdinIsPipe()) {
    process.stdin.on('end', stop);
    process.stdin.on('error', stop);
    process.stdin.resume();
  }
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/** True when stdin is a pipe or socket (spawned by run-all), not a terminal or /dev/null. */
export function stdinIsPipe(): boolean {
  try {
    const st = fstatSync(0);
    return st.isFIFO() || st.isSocket();
  } catch {
    return false;
  }
}

/** Read JSON lines from stdin (the control channel from run-all). */
export function onStdinLines(handler: (msg: Record<string, unknown>) => void): void {
  let rest = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk: string) => {
    rest += chunk;
    let nl = rest.indexOf('\n');
    while (nl >= 0) {
      const line = rest.slice(0, nl).trim();
      rest = rest.slice(nl + 1);
      if (line !== '') {
        try {
          handler(JSON.parse(line) as Record<string, unknown>);
        } catch {
          process.stderr.write(`ignoring control line ${JSON.stringify(line)}\n`);
        }
      }
      nl = rest.indexOf('\n');
    }
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Settle with `p`, or reject after `ms`; the timer is cleared either way. */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expire = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${Math.round(ms / 1000)} s`)), ms);
  });
  try {
    return await Promise.race([p, expire]);
  } finally {
    clearTimeout(timer);
  }
}
