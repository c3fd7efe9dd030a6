// Kernel threads that may run on any CPU (kdamond, rcu_preempt, khugepaged, ...) confined to the
// load generator's CPU for the length of a run, and put back afterwards.
//
// The scheduler places such a thread on the idle-most core, and with the load generator busy-polling
// cpu 0 that is the core the peer under test and the node share. On this VM `kdamond.0` (DAMON, the
// memory monitor) wakes every ~512 ms for 1.5–4 ms and `rcu_preempt` now and then for ~2 ms; each
// burst stalls every call in flight on that core. Confined to the generator's core, a burst delays
// the generator's next sends instead, which the latency it reports (from the actual send) does not
// count. Per-CPU kernel threads (ksoftirqd/N, kworker/N:M, migration/N) cannot be moved and are not
// tried. Needs root; without it nothing moves and the results say so.
import { spawnSync } from 'node:child_process';
import { childrenOf, hasTaskset } from './children.js';
import { readText } from './process-util.js';

export interface ConfinedKernelThreads {
  /** The CPU list the threads were moved to. */
  cpu: string;
  /** Names of the threads moved (e.g. "kdamond.0"). */
  moved: string[];
  /** Why nothing was moved, when nothing was. */
  note?: string;
}

const KTHREADD = 2;

/** The CPUs a thread may run on, as /proc lists them (e.g. "0-1"); undefined once it has exited. */
function allowedCpus(pid: number): string | undefined {
  return /^Cpus_allowed_list:\s*(.*)$/m.exec(readText(`/proc/${pid}/status`) ?? '')?.[1]?.trim();
}

/** Confines every movable kernel thread allowed on all of `allCpus` to `cpu`; undo() restores them. */
export function confineKernelThreads(cpu: string, allCpus: string): { result: ConfinedKernelThreads; undo: () => void } {
  const moved: { pid: number; name: string }[] = [];
  const undo = (): void => {
    for (const t of moved.splice(0)) spawnSync('taskset', ['-pc', allCpus, String(t.pid)], { stdio: 'ignore' });
  };
  if (process.platform !== 'linux' || !hasTaskset) return { result: { cpu, moved: [], note: 'needs Linux and taskset' }, undo };
  let refused = 0;
  for (const { pid, name } of childrenOf(KTHREADD)) {
    if (allowedCpus(pid) !== allCpus) continue;
    // Per-CPU and workqueue threads refuse a new affinity (EINVAL); only root may move the rest.
    if (spawnSync('taskset', ['-pc', cpu, String(pid)], { stdio: 'ignore' }).status === 0) moved.push({ pid, name });
    else refused++;
  }
  const result: ConfinedKernelThreads = { cpu, moved: moved.map((t) => t.name) };
  if (moved.length === 0) result.note = refused > 0 ? `${refused} kernel threads refused a new affinity (not root?)` : 'no movable kernel threads';
  return { result, undo };
}
