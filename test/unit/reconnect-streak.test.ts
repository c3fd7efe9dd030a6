import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { pino } from 'pino';
import { CLOSED_AT_ONCE, ReconnectStreak } from '../../src/upstream/reconnect-streak.js';

describe('ReconnectStreak', () => {
  let connects: number[];
  let clock: number;
  let lines: Array<{ level: number; err?: string }>;
  let streak: ReconnectStreak;
  const tick = (ms: number): void => {
    for (let i = 0; i < ms; i++) {
      clock++;
      mock.timers.tick(1);
    }
  };
  /** How long after now the next connect comes (at most `within` ms). */
  const nextConnectIn = (within = 20_000): number | undefined => {
    const before = connects.length;
    const start = clock;
    for (let i = 0; i < within && connects.length === before; i++) tick(1);
    return connects.length > before ? clock - start : undefined;
  };

  beforeEach(() => {
    mock.timers.enable({ apis: ['setTimeout'] });
    connects = [];
    clock = 0;
    lines = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(JSON.parse(chunk.toString()) as { level: number; err?: string });
        callback();
      },
    });
    const logger = pino({ base: null, timestamp: false, level: 'debug' }, sink);
    // The jitter's top: every delay is its ceiling.
    streak = new ReconnectStreak({ baseMs: 100, maxMs: 1000 }, logger, () => connects.push(clock), () => 0.9999);
  });
  afterEach(() => {
    streak.stop();
    mock.timers.reset();
    mock.restoreAll();
  });

  it('doubles the backoff per attempt up to maxMs, and starts over once a socket stays open 2 s', () => {
    const delays = [];
    for (let i = 0; i < 6; i++) {
      streak.schedule('node');
      delays.push(nextConnectIn());
    }
    assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000]);
    streak.opened();
    tick(2000);
    assert.equal(streak.closed(), false, 'open for 2 s: stable');
    streak.schedule('node');
    assert.equal(nextConnectIn(), 100);
  });

  it('a socket closed within 2 s of opening keeps the streak going', () => {
    for (let i = 0; i < 3; i++) {
      streak.schedule('node');
      nextConnectIn();
    }
    streak.opened();
    tick(1500);
    assert.equal(streak.closed(), true);
    tick(1000);
    streak.schedule('node');
    assert.equal(nextConnectIn(), 800);
  });

  it("waits out a node's Retry-After once, then the backoff again", () => {
    streak.retryAfter(5000);
    streak.schedule('node');
    assert.equal(nextConnectIn(), 5000);
    streak.schedule('node');
    assert.equal(nextConnectIn(), 200);
  });

  it("after a close of evmux's own it reconnects at once, at most once a second", () => {
    streak.schedule('own');
    assert.equal(nextConnectIn(), 1, 'setTimeout 0: the next millisecond');
    streak.schedule('own');
    assert.equal(nextConnectIn(), 100, 'the second own close within a second waits out the backoff');
  });

  it('hurry connects at once, once per streak, and only while a backoff is being waited out', () => {
    streak.hurry();
    assert.equal(connects.length, 0, 'nothing scheduled: nothing to hurry');
    streak.schedule('node');
    streak.hurry();
    assert.deepEqual(connects, [0]);
    assert.equal(nextConnectIn(1000), undefined, 'the hurried timer is gone');
    streak.schedule('node');
    streak.hurry();
    assert.equal(connects.length, 1, 'a second hurry in the same streak waits');
    assert.equal(nextConnectIn(), 200);
    streak.opened();
    tick(2000);
    streak.schedule('node');
    streak.hurry();
    assert.equal(connects.length, 3, 'a new streak may hurry again');
  });

  it('warns of each reason once per streak (debug after), and an open after sockets that closed at once is no news', async () => {
    streak.failed('ECONNREFUSED');
    streak.failed('ECONNREFUSED');
    streak.failed('401 Unauthorized');
    assert.equal(streak.opened(), false);
    tick(2000);
    streak.failed('ECONNREFUSED');
    streak.failed(`${CLOSED_AT_ONCE} (code 1000)`);
    assert.equal(streak.opened(), true);
    await new Promise((resolve) => setImmediate(resolve));
    const WARN = 40;
    const DEBUG = 20;
    assert.deepEqual(
      lines.map((l) => [l.level, l.err]),
      [
        [WARN, 'ECONNREFUSED'],
        [DEBUG, 'ECONNREFUSED'],
        [WARN, '401 Unauthorized'],
        [WARN, 'ECONNREFUSED'],
        [WARN, `${CLOSED_AT_ONCE} (code 1000)`],
      ],
    );
  });
});
