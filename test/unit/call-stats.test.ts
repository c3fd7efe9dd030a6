import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CallStats } from '../../src/call-stats.js';
import { Metrics } from '../../src/metrics.js';
import { matchingSamples, sumSamples } from '../support/prom-text.js';

test('CallStats counts calls per method, upstream and outcome', () => {
  const stats = new CallStats([0.001, 0.01]);
  stats.record('eth_call', 'a', 'ok', 0.0005);
  stats.record('eth_call', 'a', 'ok', 0.002);
  stats.record('eth_call', 'b', 'timeout', 5);
  stats.record('eth_getBalance', 'a', 'rpc_error', 0.001);
  const seen: string[] = [];
  stats.forEachCount(({ method, upstream, outcome }, count) => seen.push(`${method} ${upstream} ${outcome} ${count}`));
  assert.deepEqual(seen.sort(), ['eth_call a ok 2', 'eth_call b timeout 1', 'eth_getBalance a rpc_error 1']);
});

test('CallStats keeps every outcome apart', () => {
  const stats = new CallStats([1]);
  const outcomes = ['ok', 'rpc_error', 'timeout', 'transport_error', 'rejected', 'too_large'] as const;
  outcomes.forEach((outcome, k) => {
    for (let n = 0; n <= k; n++) stats.record('m', 'u', outcome, 0.1);
  });
  const seen = new Map<string, number>();
  stats.forEachCount(({ outcome }, count) => seen.set(outcome, count));
  assert.deepEqual(Object.fromEntries(seen), { ok: 1, rpc_error: 2, timeout: 3, transport_error: 4, rejected: 5, too_large: 6 });
});

test('CallStats writes a cumulative histogram per method; a value on a bound falls into that bucket', () => {
  const stats = new CallStats([0.001, 0.01]);
  for (const seconds of [0.0005, 0.001, 0.002, 5]) stats.record('eth_call', 'a', 'ok', seconds);
  const text = stats.histogramText('x_seconds', 'help text');
  assert.match(text, /^# HELP x_seconds help text\n# TYPE x_seconds histogram\n/);
  assert.deepEqual(matchingSamples(text, 'x_seconds_bucket', { method: 'eth_call' }), [2, 3, 4]);
  assert.equal(sumSamples(text, 'x_seconds_count', { method: 'eth_call' }), 4);
  assert.ok(Math.abs(sumSamples(text, 'x_seconds_sum', { method: 'eth_call' }) - 5.0035) < 1e-12);
  assert.match(text, /x_seconds_bucket\{method="eth_call",le="\+Inf"\} 4\n/);
});

test('CallStats counts a rejected call (never sent) and an answer over the limit, but leaves them out of the latency histogram', () => {
  const stats = new CallStats([1]);
  stats.record('m', 'u', 'ok', 0.5);
  stats.record('m', 'u', 'rejected', 0);
  stats.record('m', 'u', 'too_large', 0.7);
  const seen: string[] = [];
  stats.forEachCount(({ outcome }, count) => seen.push(`${outcome} ${count}`));
  assert.deepEqual(seen.sort(), ['ok 1', 'rejected 1', 'too_large 1']);
  assert.equal(sumSamples(stats.histogramText('h', 'h'), 'h_count', { method: 'm' }), 1);
});

test('CallStats escapes label values', () => {
  const stats = new CallStats([1]);
  stats.record('a"b\\c', 'u', 'ok', 0.5);
  assert.match(stats.histogramText('h', 'h'), /method="a\\"b\\\\c"/);
});

test('/metrics text has evmux_requests_total and evmux_request_duration_seconds from the tally, once each', async () => {
  const metrics = new Metrics(['node1']);
  metrics.requestFinished('eth_chainId', 'node1', 'ok', 0.0002);
  metrics.requestFinished('eth_chainId', 'node1', 'ok', 0.003);
  metrics.requestFinished('web3_notAMethod', 'node1', 'transport_error', 0.02);
  let text = await metrics.exposition();
  assert.equal(sumSamples(text, 'evmux_requests_total', { method: 'eth_chainId', upstream: 'node1', outcome: 'ok' }), 2);
  assert.equal(sumSamples(text, 'evmux_requests_total', { method: 'other', outcome: 'transport_error' }), 1);
  assert.equal(sumSamples(text, 'evmux_request_duration_seconds_count', { method: 'eth_chainId' }), 2);
  assert.equal(text.match(/# TYPE evmux_request_duration_seconds histogram/g)?.length, 1);
  assert.equal(text.match(/# TYPE evmux_requests_total counter/g)?.length, 1);
  // A second scrape reports totals, not increments since the last scrape.
  metrics.requestFinished('eth_chainId', 'node1', 'ok', 0.0002);
  text = await metrics.exposition();
  assert.equal(sumSamples(text, 'evmux_requests_total', { method: 'eth_chainId', outcome: 'ok' }), 3);
  assert.equal(sumSamples(text, 'evmux_request_duration_seconds_count', { method: 'eth_chainId' }), 3);
});

test('evmux_reorgs_total counts a reorg once, however many streams go over it', async () => {
  const metrics = new Metrics(['node1']);
  const head = (hash: string, parentHash: string) => ({ hash, parentHash });
  const [a4, a5, b4, b5, b6] = [head('0xa4', '0xc3'), head('0xa5', '0xa4'), head('0xb4', '0xc3'), head('0xb5', '0xb4'), head('0xb6', '0xb5')];
  metrics.reorg([a5, a4], [b4, b5, b6]); // a newHeads stream
  metrics.reorg([a4], [b4, b5]); // another, on a node a block behind
  metrics.reorg([b6], [head('0xd6', '0xb5')]); // the next reorg
  assert.equal(sumSamples(await metrics.exposition(), 'evmux_reorgs_total'), 2);
});
