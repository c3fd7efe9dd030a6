/**
 * Where evmux's log lines and the demo's banner go: stdout, written so that trouble there costs log
 * lines, never the gateway. pino's own asynchronous destination (SonicBoom) did not: behind a reader
 * that stopped reading, its exit hook slept and retried for as long as the pipe stayed full, so a
 * SIGTERM stopped the gateway but never ended the process (only SIGKILL did); a full disk was an
 * unhandled 'error' event, and the dying process then hung in the same loop holding its port; and
 * the banner, written through process.stdout, ended the demo with an EPIPE stack under `| head -1`.
 *
 * - Lines are written in order, all those of a loop turn in one write, on the event loop's thread:
 *   stdout is a file (writes do not block for long) or a pipe or terminal, made non-blocking (by
 *   Node, and by stdout() for a terminal), so a full one is EAGAIN at once, never a wait.
 * - A full pipe is tried again every RETRY_FULL_MS. Lines wait, up to MAX_WAITING_CHARS; past that
 *   new ones are dropped, and a line saying how many goes out once stdout takes lines again.
 * - Any other error (a full disk, EIO) is told once on stderr and tried again every RETRY_ERROR_MS,
 *   lines waiting as above. EPIPE or EIO (the reader or the terminal is gone for good) ends writing:
 *   lines are dropped.
 * - At exit, what waits is written for EXIT_FLUSH_MS at most, then left.
 */
import { writeSync } from 'node:fs';

const MAX_WAITING_CHARS = 16 * 1024 * 1024;
const RETRY_FULL_MS = 20;
const RETRY_ERROR_MS = 1000;
const EXIT_FLUSH_MS = 1000;
const EXIT_WAIT_MS = 1;

type Outcome = 'done' | 'full' | 'failed' | 'gone';

export class StdoutWriter {
  readonly #fd: number;
  /** bytes of the oldest write that the fd took only part of */
  #head: Buffer | undefined;
  #lines: string[] = [];
  /** characters of #lines and bytes of #head */
  #waitingChars = 0;
  #dropped = 0;
  #gone = false;
  #scheduled = false;
  #retry: NodeJS.Timeout | undefined;
  readonly #told = new Set<string>();

  readonly #maxWaitingChars: number;

  constructor(fd: number, maxWaitingChars = MAX_WAITING_CHARS) {
    this.#fd = fd;
    this.#maxWaitingChars = maxWaitingChars;
    // First of the exit listeners: whatever else runs at exit, the lines go out before it.
    process.prependListener('exit', () => this.#flushAtExit());
  }

  /** Queue `text` (whole lines) for stdout. Always true: pino must never wait on it. */
  write(text: string): boolean {
    if (this.#gone) return true;
    if (this.#waitingChars + text.length > this.#maxWaitingChars) {
      this.#dropped++;
      return true;
    }
    this.#lines.push(text);
    this.#waitingChars += text.length;
    if (!this.#scheduled && this.#retry === undefined) {
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        this.#writeNow();
      });
    }
    return true;
  }

  /** pino's logger.flush(): write what waits, as far as stdout takes it now. */
  flush(callback?: (error?: Error) => void): void {
    if (this.#retry === undefined) this.#writeNow();
    callback?.();
  }

  #writeNow(): void {
    const outcome = this.#writeWaiting();
    if (outcome === 'full' || outcome === 'failed') {
      this.#retry = setTimeout(
        () => {
          this.#retry = undefined;
          this.#writeNow();
        },
        outcome === 'full' ? RETRY_FULL_MS : RETRY_ERROR_MS,
      );
      this.#retry.unref();
    }
  }

  /** Write what waits until done or the fd refuses. */
  #writeWaiting(): Outcome {
    for (;;) {
      if (this.#head === undefined) {
        if (this.#lines.length === 0) return 'done';
        if (this.#dropped > 0) this.#lines.push(droppedLine(this.#dropped));
        this.#dropped = 0;
        this.#head = Buffer.from(this.#lines.length === 1 ? this.#lines[0]! : this.#lines.join(''));
        this.#lines = [];
        this.#waitingChars = this.#head.length;
      }
      let written: number;
      try {
        written = writeSync(this.#fd, this.#head);
      } catch (error) {
        return this.#refused(error as NodeJS.ErrnoException);
      }
      this.#waitingChars -= written;
      this.#head = written >= this.#head.length ? undefined : this.#head.subarray(written);
    }
  }

  #refused(error: NodeJS.ErrnoException): Outcome {
    if (error.code === 'EAGAIN' || error.code === 'EWOULDBLOCK') return 'full';
    // No reader any more (EPIPE), or a terminal that hung up (EIO): it does not come back.
    if (error.code === 'EPIPE' || error.code === 'EIO') {
      this.#gone = true;
      this.#head = undefined;
      this.#lines = [];
      this.#waitingChars = 0;
      this.#tell(error, 'no one reads them any more: log lines are dropped from now on');
      return 'gone';
    }
    this.#tell(error, `log lines wait, up to ${this.#maxWaitingChars} characters, and are written once it takes them again`);
    return 'failed';
  }

  /** Say once per kind of error on stderr, where there may yet be a reader. */
  #tell(error: NodeJS.ErrnoException, what: string): void {
    const code = error.code ?? error.message;
    if (this.#told.has(code)) return;
    this.#told.add(code);
    try {
      writeSync(2, `evmux: cannot write to stdout (${error.message}): ${what}\n`);
    } catch {
      // stderr is gone as well
    }
  }

  #flushAtExit(): void {
    if (this.#gone) return;
    const deadline = performance.now() + EXIT_FLUSH_MS;
    const pause = new Int32Array(new SharedArrayBuffer(4));
    while (this.#writeWaiting() === 'full' && performance.now() < deadline) Atomics.wait(pause, 0, 0, EXIT_WAIT_MS);
  }
}

/** A log line in pino's form, saying how many lines were dropped. */
function droppedLine(count: number): string {
  return `${JSON.stringify({ level: 40, time: new Date().toISOString(), service: 'evmux', dropped: count, msg: 'log lines dropped: stdout took none for a while' })}\n`;
}

let stdoutWriter: StdoutWriter | undefined;

/** The one writer of fd 1. */
export function stdout(): StdoutWriter {
  if (stdoutWriter === undefined) {
    // Reading process.stdout has Node make a pipe on fd 1 non-blocking, but a terminal blocking: a
    // terminal that stopped taking output (Ctrl-S, an ssh client asleep) then held the event loop
    // in a write. Node sets its flags back at exit.
    const handle = (process.stdout as { _handle?: { setBlocking?: (blocking: boolean) => number } })._handle;
    if (process.stdout.isTTY) handle?.setBlocking?.(false);
    stdoutWriter = new StdoutWriter(process.stdout.fd);
  }
  return stdoutWriter;
}
