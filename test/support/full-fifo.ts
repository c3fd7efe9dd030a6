/**
 * A FIFO whose write end is full: its reader, kept open, has read nothing (a log reader that stopped
 * reading). Both ends are non-blocking. The reader and the FIFO go when the test ends; the caller
 * closes the writer (or hands it to a child process and closes its own copy).
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

export function fullFifo(t: TestContext): { reader: number; writer: number } {
  const dir = mkdtempSync(join(tmpdir(), 'evmux-fifo-'));
  const path = join(dir, 'fifo');
  execFileSync('mkfifo', [path]);
  const reader = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  t.after(() => {
    closeSync(reader);
    rmSync(dir, { recursive: true, force: true });
  });
  const writer = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
  const filler = Buffer.alloc(4096, 0x2e);
  for (;;) {
    try {
      writeSync(writer, filler);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EAGAIN') break;
      throw error;
    }
  }
  return { reader, writer };
}
