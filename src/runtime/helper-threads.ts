/**
 * evmux's helper threads (V8's garbage-collection and compiler workers, libuv's thread pool) at idle
 * CPU priority when evmux may run on one CPU only.
 *
 * After each scavenge V8 hands the sweep of the young generation's ArrayBuffers (uWS wraps every
 * client frame in one, Node every socket read) to a worker thread. On a machine with CPUs to spare
 * the worker runs beside the event loop. Confined to one CPU it can only run in the loop's place,
 * and a freshly woken thread gets the CPU first: the loop stood still for the 1–1.5 ms of the sweep,
 * and so did every call in flight (BENCHMARKS.md). As SCHED_IDLE threads the helpers run only
 * while the loop waits for I/O and give the CPU back the moment it wakes. Linux has no Node API for
 * a thread's scheduling policy, so each thread gets it from `chrt` (util-linux).
 *
 * The price: V8's optimizing compiler runs on the same helpers, so on a CPU that never idles, code
 * that becomes hot runs unoptimized until the CPU has a moment (seconds with three busy processes
 * on one CPU; BENCHMARKS.md, sixteenth session). And the event loop waits on these threads at
 * times (a garbage collection waits for every V8 worker to reach a safepoint, a scavenge for the
 * last sweep): beside a process that never sleeps, an idle-priority worker gets almost no CPU, and
 * the loop stood still for 0.4–6 s at a time. So it is not the default (`helperThreads: normal`):
 * it is for a CPU evmux shares with nothing busier than processes waiting on I/O.
 *
 * Threads started later (libuv's pool grows on demand) inherit the event loop's normal priority.
 */
import { execFile } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/** `auto`: idle priority when the process may use one CPU only; `idle`: always; `normal`: never. */
export type HelperThreadsSetting = 'auto' | 'idle' | 'normal';

export interface HelperThreadsOutcome {
  /** Whether the setting asked for idle priority here (`idle`, or `auto` on one CPU). */
  wanted: boolean;
  /** Threads now at idle priority. */
  idled: number;
  /** Why nothing was changed, or what failed. */
  reason?: string;
}

/** Sets one thread to SCHED_IDLE: 'idled', 'gone' (it ended meanwhile) or what went wrong. */
function chrtIdle(tid: string): Promise<string> {
  return new Promise((resolve) => {
    execFile('chrt', ['--idle', '--pid', '0', tid], (error, _stdout, stderr) => {
      if (error === null) resolve('idled');
      else if (/No such process/i.test(stderr)) resolve('gone');
      else resolve((error as NodeJS.ErrnoException).code === 'ENOENT' ? 'chrt not found' : stderr.trim() || error.message);
    });
  });
}

/** Puts every thread of this process but the event loop's at SCHED_IDLE, as `setting` asks. */
export async function applyHelperThreadPriority(setting: HelperThreadsSetting, cpus = availableParallelism()): Promise<HelperThreadsOutcome> {
  if (setting === 'normal') return { wanted: false, idled: 0, reason: 'helperThreads is "normal"' };
  if (setting === 'auto' && cpus > 1) return { wanted: false, idled: 0, reason: `evmux may run on ${cpus} CPUs` };
  if (process.platform !== 'linux') return { wanted: true, idled: 0, reason: `scheduling policies are set on Linux only, not ${process.platform}` };
  const helpers = readdirSync('/proc/self/task').filter((tid) => tid !== String(process.pid));
  const results = await Promise.all(helpers.map(chrtIdle));
  const idled = results.filter((result) => result === 'idled').length;
  const failure = results.find((result) => result !== 'idled' && result !== 'gone');
  return failure === undefined ? { wanted: true, idled } : { wanted: true, idled, reason: failure };
}

/** Linux scheduling policies as /proc reports them. */
export const SCHED_OTHER = 0;
export const SCHED_IDLE = 5;

/** Each thread's scheduling policy (field 41 of /proc/PID/task/TID/stat), by thread id; threads that end meanwhile are left out. */
export function schedulingPolicies(pid: number): Map<number, number> {
  const byThread = new Map<number, number>();
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return byThread; // no such process (or not Linux)
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces) start at field 3.
      byThread.set(Number(tid), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[41 - 3]));
    } catch {
      // the thread ended
    }
  }
  return byThread;
}
