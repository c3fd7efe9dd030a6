/**
 * Per-call counts and latency buckets on the hot path. prom-client hashes a label object on every
 * `inc`/`observe` (sorting and joining the label values), which cost about 5 % of evmux's CPU per
 * proxied call. Calls are tallied here in nested maps and plain arrays instead, and turned into
 * Prometheus samples only when /metrics is scraped.
 */
import type { RequestOutcome } from './telemetry.js';

interface Durations {
  /** count per bucket, not cumulative; the last slot is above every bound (+Inf) */
  readonly buckets: Float64Array;
  sum: number;
  count: number;
}

export class CallStats {
  readonly #bounds: readonly number[];
  /** method → upstream → outcome → count */
  readonly #counts = new Map<string, Map<string, Map<RequestOutcome, number>>>();
  readonly #durations = new Map<string, Durations>();

  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
  }

  record(method: string, upstream: string, outcome: RequestOutcome, seconds: number): void {
    let byUpstream = this.#counts.get(method);
    if (byUpstream === undefined) this.#counts.set(method, (byUpstream = new Map()));
    let byOutcome = byUpstream.get(upstream);
    if (byOutcome === undefined) byUpstream.set(upstream, (byOutcome = new Map()));
    byOutcome.set(outcome, (byOutcome.get(outcome) ?? 0) + 1);

    let durations = this.#durations.get(method);
    if (durations === undefined) {
      durations = { buckets: new Float64Array(this.#bounds.length + 1), sum: 0, count: 0 };
      this.#durations.set(method, durations);
    }
    let slot = 0;
    while (slot < this.#bounds.length && seconds > this.#bounds[slot]!) slot++;
    durations.buckets[slot]!++;
    durations.sum += seconds;
    durations.count++;
  }

  /** Visit every (method, upstream, outcome) count. */
  forEachCount(visit: (labels: { method: string; upstream: string; outcome: RequestOutcome }, count: number) => void): void {
    for (const [method, byUpstream] of this.#counts) {
      for (const [upstream, byOutcome] of byUpstream) {
        for (const [outcome, count] of byOutcome) visit({ method, upstream, outcome }, count);
      }
    }
  }

  /** The latency histogram in Prometheus text format: cumulative `_bucket`s with `le`, `_sum`, `_count`. */
  histogramText(name: string, help: string): string {
    const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`];
    for (const [method, durations] of this.#durations) {
      const label = `method="${escapeLabel(method)}"`;
      let cumulative = 0;
      this.#bounds.forEach((bound, slot) => {
        cumulative += durations.buckets[slot]!;
        lines.push(`${name}_bucket{${label},le="${bound}"} ${cumulative}`);
      });
      lines.push(`${name}_bucket{${label},le="+Inf"} ${durations.count}`, `${name}_sum{${label}} ${durations.sum}`, `${name}_count{${label}} ${durations.count}`);
    }
    return `${lines.join('\n')}\n`;
  }
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
