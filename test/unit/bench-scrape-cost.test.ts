import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';

test('bench/scrape-cost.ts renders evmux\'s /metrics with the descriptors open and prints one JSON line', () => {
  const out = execFileSync(process.execPath, ['--import', 'tsx', 'bench/scrape-cost.ts', '--fds', '50', '--scrapes', '3', '--metrics', 'src/metrics.ts'], { encoding: 'utf8' });
  const result = JSON.parse(out.trim()) as { fds: number; scrapes: number; renderMs: { p50: number; max: number }; loopDelayMaxMs: number };
  assert.deepEqual([result.fds, result.scrapes], [50, 3]);
  assert.ok(result.renderMs.p50 > 0 && result.renderMs.p50 <= result.renderMs.max, JSON.stringify(result));
  assert.ok(result.loopDelayMaxMs > 0, JSON.stringify(result));
});
