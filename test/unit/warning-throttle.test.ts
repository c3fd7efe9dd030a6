import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import { WarningThrottle } from '../../src/runtime/warning-throttle.js';

function recorder(): { lines: Array<Record<string, unknown>>; throttle: WarningThrottle } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      callback();
    },
  });
  return { lines, throttle: new WarningThrottle(pino({ base: null, timestamp: false }, sink), 10_000) };
}

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('one warning per upstream and message in a window; the next one carries the count of those held back', async () => {
  const { lines, throttle } = recorder();
  for (let i = 0; i < 2000; i++) throttle.warn({ upstream: 'a', err: `e${i}` }, 'subscription step failed', 1_000 + i);
  throttle.warn({ upstream: 'b', err: 'x' }, 'subscription step failed', 1_500);
  throttle.warn({ upstream: 'a', err: 'y' }, 'catch-up failed', 1_600);
  throttle.warn({ upstream: 'a', err: 'late' }, 'subscription step failed', 11_000);
  throttle.warn({ upstream: 'a', err: 'later' }, 'subscription step failed', 21_000);
  await flush();
  assert.deepEqual(
    lines.map(({ upstream, err, suppressed, msg }) => ({ upstream, err, suppressed, msg })),
    [
      { upstream: 'a', err: 'e0', suppressed: undefined, msg: 'subscription step failed' },
      { upstream: 'b', err: 'x', suppressed: undefined, msg: 'subscription step failed' },
      { upstream: 'a', err: 'y', suppressed: undefined, msg: 'catch-up failed' },
      { upstream: 'a', err: 'late', suppressed: 1999, msg: 'subscription step failed' },
      { upstream: 'a', err: 'later', suppressed: undefined, msg: 'subscription step failed' },
    ],
  );
  assert.ok(lines.every((line) => line['level'] === 40));
});
