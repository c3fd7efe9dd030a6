// The KVM guest's halt polling (the cpuidle-haltpoll driver), switched on for the length of a run
// and put back afterwards.
//
// With polling off, a vCPU with nothing to run halts and leaves the guest; the next packet for it
// then waits for the host to wake it. On this VM that made direct's open-loop p50 62 µs at 5k
// calls/s, against 13 µs serial (where the core never idles) and 20 µs with polling on, and a
// gateway's added latency at that rate was mostly the VM's wakes, not its work. Polling for up to
// POLL_NS before halting keeps a vCPU that is about to get work in the guest (BENCHMARKS.md, "The
// VM's idle wakes"). The setting is the machine's, not a peer's: every peer runs under it. Needs
// root and the haltpoll driver; without them nothing changes and the results say so.
import { writeFileSync } from 'node:fs';
import { readText } from './process-util.js';

/** Polling before a halt at most this long (ns): longer than the 200 µs between calls at 5k/s. */
export const POLL_NS = 400_000;

export interface HaltPolling {
  /** The cpuidle driver in use (haltpoll polls; others ignore the setting). */
  driver: string | null;
  /** guest_halt_poll_ns before the run. */
  before: number | null;
  /** guest_halt_poll_ns during the run. */
  during: number | null;
  /** Why polling was not switched on, when it was not. */
  note?: string;
}

const read = (path: string): string | undefined => readText(path)?.trim();

/** Switches polling on; undo() restores the value found. `sys` is where sysfs is mounted (tests). */
export function enableHaltPolling(sys = '/sys'): { result: HaltPolling; undo: () => void } {
  const driver = read(`${sys}/devices/system/cpu/cpuidle/current_driver`) ?? null;
  const file = `${sys}/module/haltpoll/parameters/guest_halt_poll_ns`;
  const found = read(file);
  const before = found === undefined ? null : Number(found);
  const result: HaltPolling = { driver, before, during: before };
  const none = { result, undo: (): void => {} };
  if (driver !== 'haltpoll' || before === null) {
    result.note = `cpuidle driver ${driver ?? 'unknown'}${before === null ? ', no haltpoll parameters' : ''}: nothing to switch on`;
    return none;
  }
  if (before >= POLL_NS) return none;
  try {
    writeFileSync(file, String(POLL_NS));
  } catch (err) {
    result.note = `cannot write ${file} (${err instanceof Error ? err.message : String(err)}; not root?)`;
    return none;
  }
  result.during = POLL_NS;
  let restored = false;
  const undo = (): void => {
    if (restored) return;
    restored = true;
    try {
      writeFileSync(file, String(before));
    } catch {
      // the run's results record what it was; nothing else to do
    }
  };
  return { result, undo };
}
