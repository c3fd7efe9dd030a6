// HDR histograms in nanoseconds, summarized in microseconds for the JSON results.
import * as hdr from 'hdr-histogram-js';
import type { Histogram } from 'hdr-histogram-js';

export type { Histogram };

/** 1 ns .. 10 min at 3 significant digits (0.1 % relative error). */
export function newHistogram(): Histogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 600e9,
    numberOfSignificantValueDigits: 3,
  });
}

export interface LatencySummary {
  count: number;
  minUs: number;
  meanUs: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
}

const us = (ns: number): number => Math.round(ns / 100) / 10;

export function summarize(h: Histogram): LatencySummary {
  if (h.totalCount === 0) {
    return { count: 0, minUs: 0, meanUs: 0, p50Us: 0, p90Us: 0, p99Us: 0, p999Us: 0, maxUs: 0 };
  }
  return {
    count: h.totalCount,
    minUs: us(h.minNonZeroValue),
    meanUs: us(h.mean),
    p50Us: us(h.getValueAtPercentile(50)),
    p90Us: us(h.getValueAtPercentile(90)),
    p99Us: us(h.getValueAtPercentile(99)),
    p999Us: us(h.getValueAtPercentile(99.9)),
    maxUs: us(h.maxValue),
  };
}

/** Record a duration given in (fractional) milliseconds, as performance.now() deltas are. */
export function recordMs(h: Histogram, ms: number): void {
  h.recordValue(Math.max(1, Math.round(ms * 1e6)));
}

/** Percentile of a plain array (for small per-head series). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx] ?? 0;
}
