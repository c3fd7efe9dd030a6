/**
 * evmux_event_loop_delay_seconds: a stall of the event loop is seen by every scraper, not only by
 * whoever scrapes first (prom-client's lag gauges were reset by each scrape).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startGateway } from '../support/gateway.js';
import { matchingSamples } from '../support/prom-text.js';

/** Samples of the histogram over 0.25 s, as one scrape reads them. */
async function stallsOver250ms(metricsText: string): Promise<number> {
  const [within] = matchingSamples(metricsText, 'evmux_event_loop_delay_seconds_bucket', { le: '0.25' });
  const [all] = matchingSamples(metricsText, 'evmux_event_loop_delay_seconds_count');
  assert.ok(within !== undefined && all !== undefined, 'the histogram is there');
  return all - within;
}

test('an event-loop stall is counted for every scraper: a scrape by one does not hide it from the next', async (t) => {
  const evmux = await startGateway(['ws://127.0.0.1:1'], {}, { waitReady: false });
  t.after(() => evmux.close());
  await sleep(350);
  const before = await stallsOver250ms((await evmux.get('/metrics')).body);
  const until = performance.now() + 600;
  while (performance.now() < until); // the gateway runs in this process: its loop stalls with the test's
  await sleep(250); // the sampler's timer runs late once, and is counted
  const first = await stallsOver250ms((await evmux.get('/metrics')).body);
  const second = await stallsOver250ms((await evmux.get('/metrics')).body);
  assert.equal(first - before, 1, 'the first scraper sees the stall');
  assert.equal(second, first, 'and so does the next');
  const idle = matchingSamples((await evmux.get('/metrics')).body, 'evmux_event_loop_delay_seconds_bucket', { le: '0.05' })[0]!;
  assert.ok(idle >= 3, `an idle loop reads near 0, not the sampling interval: ${idle} samples under 50 ms`);
  assert.deepEqual(matchingSamples((await evmux.get('/metrics')).body, 'evmux_process_nodejs_eventloop_lag_max_seconds'), [], 'the gauges reset by scrapes are gone');
});
