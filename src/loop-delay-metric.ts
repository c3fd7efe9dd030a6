/**
 * `evmux_event_loop_delay_seconds`: how much later than due a timer set every SAMPLE_MS fires, a
 * Prometheus histogram. prom-client's event-loop gauges (min, max, mean, percentiles) are taken over
 * the time since the last scrape, whoever made it, and reset by it: a GET /metrics from any client,
 * an operator's curl or the second Prometheus of a pair wiped a stall from what the first read next.
 * A histogram's counts only grow, so every scraper sees every stall (`rate`, `histogram_quantile`).
 * Measured as a delay beyond the timer's own interval, an idle loop reads near 0.
 */
import { Histogram, type Registry } from 'prom-client';

/**
 * How often the loop is sampled. At prom-client's default, 10 ms, the sampling timer slowed the calls
 * around each of its wakes: at 5k calls/s one call in eight took 55-90 µs instead of ~35, and the
 * open-loop p90 rose from ~50 to ~70 µs (BENCHMARKS.md, "The VM's idle wakes"). At 100 ms the
 * histogram still sees any stall long enough to matter to a client.
 */
const SAMPLE_MS = 100;
const BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Start sampling into `registry`; the returned function stops it. */
export function sampleLoopDelay(registry: Registry): () => void {
  const histogram = new Histogram({
    name: 'evmux_event_loop_delay_seconds',
    help: `How much later than due a timer set every ${SAMPLE_MS} ms ran: time the event loop was busy (or the process stopped) and every client waited`,
    buckets: BUCKETS,
    registers: [registry],
  });
  let due = performance.now() + SAMPLE_MS;
  const timer = setInterval(() => {
    const now = performance.now();
    histogram.observe(Math.max(0, now - due) / 1000);
    due = now + SAMPLE_MS;
  }, SAMPLE_MS);
  timer.unref();
  return () => clearInterval(timer);
}
