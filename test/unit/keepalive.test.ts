import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';

import { KeepAlive } from '../../src/server/keepalive.js';
import { seededRandom } from '../support/seeded-random.js';

class FakeSocket {
  keepAliveSlot = -1;
  readonly pingedAt: number[] = [];
  constructor(private readonly clock: { now: number }) {}
  ping(): void {
    this.pingedAt.push(this.clock.now);
  }
}

describe('KeepAlive', () => {
  const clock = { now: 0 };
  const advance = (ms: number): void => {
    for (let i = 0; i < ms / 1000; i++) {
      clock.now += 1000;
      mock.timers.tick(1000);
    }
  };

  beforeEach(() => {
    clock.now = 0;
    mock.timers.enable({ apis: ['setInterval'] });
  });
  afterEach(() => mock.timers.reset());

  it('pings every member exactly once per period, the first ping within one period', () => {
    const ring = new KeepAlive<FakeSocket>(60_000, seededRandom(7));
    const sockets = Array.from({ length: 500 }, () => new FakeSocket(clock));
    for (const s of sockets) ring.add(s);
    advance(180_000);
    for (const s of sockets) {
      assert.equal(s.pingedAt.length, 3);
      assert.ok(s.pingedAt[0]! >= 1000 && s.pingedAt[0]! <= 60_000, `first ping at ${s.pingedAt[0]}`);
      assert.deepEqual([s.pingedAt[1]! - s.pingedAt[0]!, s.pingedAt[2]! - s.pingedAt[1]!], [60_000, 60_000]);
    }
  });

  it('spreads clients that connect together over the whole period', () => {
    const ring = new KeepAlive<FakeSocket>(60_000, seededRandom(11));
    const sockets = Array.from({ length: 6000 }, () => new FakeSocket(clock));
    for (const s of sockets) ring.add(s);
    advance(60_000);
    const perSecond = new Map<number, number>();
    for (const s of sockets) perSecond.set(s.pingedAt[0]!, (perSecond.get(s.pingedAt[0]!) ?? 0) + 1);
    // 60 one-second slots, 100 clients each on average; uWS's own pings put all 6000 in one.
    assert.equal(perSecond.size, 60);
    assert.ok(Math.max(...perSecond.values()) < 150, `busiest second: ${Math.max(...perSecond.values())} pings`);
  });

  it('stops pinging a removed member and stops its timer when the ring is empty', () => {
    const ring = new KeepAlive<FakeSocket>(4000, seededRandom(3));
    const a = new FakeSocket(clock);
    const b = new FakeSocket(clock);
    ring.add(a);
    ring.add(b);
    ring.add(a); // a second add is ignored
    assert.equal(ring.size, 2);
    advance(4000);
    ring.remove(a);
    ring.remove(a);
    assert.equal(ring.size, 1);
    advance(8000);
    assert.equal(a.pingedAt.length, 1);
    assert.equal(b.pingedAt.length, 3);
    ring.remove(b);
    assert.equal(ring.size, 0);
    assert.equal(b.keepAliveSlot, -1);
  });

  it('uses one-second slots, or one slot when the period is shorter', () => {
    const ring = new KeepAlive<FakeSocket>(500, seededRandom(5));
    const s = new FakeSocket(clock);
    ring.add(s);
    mock.timers.tick(500);
    mock.timers.tick(500);
    assert.equal(s.pingedAt.length, 2);
    ring.remove(s);
  });
});
