/**
 * How many descriptors this process has open, for the `evmux_process_process_open_fds` metric. prom-client
 * lists /proc/self/fd synchronously on every scrape: at 18,000 clients that held the event loop for
 * 27 ms per scrape (BENCHMARKS.md, "A scrape that stalled every client"). Since Linux 6.2 a stat of
 * that directory reports the count as its size; the stat runs on libuv's thread pool. On older
 * kernels the size is 0, and the directory is listed, also on the thread pool.
 */
import { readdir, stat } from 'node:fs/promises';

const FD_DIR = '/proc/self/fd';

/** The count, or undefined where /proc cannot tell (not Linux). */
export async function openFds(): Promise<number | undefined> {
  try {
    const { size } = await stat(FD_DIR);
    if (size > 0) return size;
    // The listing holds the descriptor it was read through, closed again by now.
    return (await readdir(FD_DIR)).length - 1;
  } catch {
    return undefined;
  }
}
