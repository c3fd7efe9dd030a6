// The load generator's own garbage collections during its measurement window. A pause in the
// generator delays every read it makes, so it shows as latency of whichever peer was publishing;
// the result reports them so a slow head can be told from a slow generator.
import { PerformanceObserver, constants, type PerformanceEntry } from 'node:perf_hooks';

export interface GcPauseSummary {
  /** scavenges (young generation) */
  minor: { count: number; maxMs: number };
  /** mark-compacts and incremental marking finalizations (old generation) */
  major: { count: number; maxMs: number };
  totalMs: number;
}

const MAJOR = constants.NODE_PERFORMANCE_GC_MAJOR | constants.NODE_PERFORMANCE_GC_INCREMENTAL;

export class GcPauses {
  readonly #summary: GcPauseSummary = { minor: { count: 0, maxMs: 0 }, major: { count: 0, maxMs: 0 }, totalMs: 0 };
  #fromMs = Number.POSITIVE_INFINITY;
  #toMs = Number.POSITIVE_INFINITY;
  readonly #observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) this.#add(e);
  });

  constructor() {
    this.#observer.observe({ entryTypes: ['gc'] });
  }

  /** Count pauses that start from now until stop(). */
  start(nowMs: number): void {
    this.#fromMs = nowMs;
  }

  stop(nowMs: number): void {
    this.#toMs = nowMs;
  }

  /** The pauses counted; call after a turn of the event loop past stop() so queued entries arrive. */
  summary(): GcPauseSummary {
    this.#observer.disconnect();
    const r = (x: number): number => Math.round(x * 100) / 100;
    const s = this.#summary;
    return { minor: { ...s.minor, maxMs: r(s.minor.maxMs) }, major: { ...s.major, maxMs: r(s.major.maxMs) }, totalMs: r(s.totalMs) };
  }

  #add(e: PerformanceEntry): void {
    if (e.startTime < this.#fromMs || e.startTime > this.#toMs) return;
    const kind = (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ?? 0;
    const bucket = (kind & MAJOR) !== 0 ? this.#summary.major : this.#summary.minor;
    bucket.count++;
    if (e.duration > bucket.maxMs) bucket.maxMs = e.duration;
    this.#summary.totalMs += e.duration;
  }
}
