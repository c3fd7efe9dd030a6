/**
 * SIGSTOP a node's process and wait until every thread of it has stopped (state T in
 * /proc/<pid>/task/<tid>/stat): a stop signal reaches each thread on its own, and a request sent
 * as fast as the signal was at times answered by the node being stopped. Linux only, as the tests
 * that stop nodes are.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { waitUntil } from './stream-recorder.js';

export async function stopProcess(pid: number): Promise<void> {
  process.kill(pid, 'SIGSTOP');
  const stopped = (): boolean =>
    readdirSync(`/proc/${pid}/task`).every((tid) => {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      return state === 'T' || state === 't';
    });
  await waitUntil(`process ${pid} stopped`, stopped, 5000, 5);
}
