/**
 * Per-call counts and latency buckets on the hot path. prom-client hashes a label object on every
 * `inc`/`observe` (sorting and joining the label values), which cost about 5 % of evmux's CPU per
 * proxied call. Calls are tallied here in a map per method and typed arrays instead, and turned into
 * Prometheus samples only when /metrics is scraped.
 */
import type { RequestOutcome } from './telemetry.js';

/** Every outcome, in the order of a method's per-upstream count slots. */
const OUTCOMES: readonly RequestOutcome[] = ['ok', 'rpc_error', 'timeout', 'transport_error', 'rejected', 'too_large'];

function outcomeSlot(outcome: RequestOutcome): number {
  switch (outcome) {
    case 'ok':
      return 0;
    case 'rpc_error':
      return 1;
    case 'timeout':
      return 2;
    case 'transport_error':
      return 3;
    case 'rejected':
      return 4;
    case 'too_large':
      return 5;
  }
}

/** One method's tally: counts per upstream (a slot per outcome) and its latency buckets. */
interface MethodStats {
  readonly byUpstream: Map<string, Float64Array>;
  /** count per bucket, not cumulative; the last slot is above every bound (+Inf) */
  readonly buckets: Float64Array;
  sum: number;
  count: number;
}

export class CallStats {
  readonly #bounds: readonly number[];
  /** method → its tally: two lookups per call (method, upstream) */
  readonly #methods = new Map<string, MethodStats>();

  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
  }

  record(method: string, upstream: string, outcome: RequestOutcome, seconds: number): void {
    let stats = this.#methods.get(method);
    if (stats === undefined) {
      stats = { byUpstream: new Map(), buckets: new Float64Array(this.#bounds.length + 1), sum: 0, count: 0 };
      this.#methods.set(method, stats);
    }
    let counts = stats.byUpstream.get(upstream);
    if (counts === undefined) stats.byUpstream.set(upstream, (counts = new Float64Array(OUTCOMES.length)));
    counts[outcomeSlot(outcome)]!++;
    // Not sent to the node: no latency of the node's to count, and a burst of refusals would pull
    // the percentiles down just as the node is overloaded. An answer over limits.maxAnswerBytes
    // is skipped unread: its time tells how much was asked for, not how fast the node is.
    if (outcome === 'rejected' || outcome === 'too_large') return;

    let slot = 0;
    while (slot < this.#bounds.length && seconds > this.#bounds[slot]!) slot++;
    stats.buckets[slot]!++;
    stats.sum += seconds;
    stats.count++;
  }

  /** Visit every (method, upstream, outcome) count that is not zero. */
  forEachCount(visit: (labels: { method: string; upstream: string; outcome: RequestOutcome }, count: number) => void): void {
    for (const [method, stats] of this.#methods) {
      for (const [upstream, counts] of stats.byUpstream) {
        counts.forEach((count, slot) => {
          if (count > 0) visit({ method, upstream, outcome: OUTCOMES[slot]! }, count);
        });
      }
    }
  }

  /** The latency histogram in Prometheus text format: cumulative `_bucket`s with `le`, `_sum`, `_count`. */
  histogramText(name: string, help: string): string {
    const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`];
    for (const [method, durations] of this.#methods) {
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
