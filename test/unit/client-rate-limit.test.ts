import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClientRateLimit } from '../../src/jsonrpc/client-rate-limit.js';

/** A limit on a clock the test moves. */
function limit(perSecond: number, burst = 0): { rate: ClientRateLimit; advance(ms: number): void } {
  let now = 1000;
  const rate = new ClientRateLimit(perSecond, burst, () => now);
  return {
    rate,
    advance: (ms) => {
      now += ms;
    },
  };
}

const takes = (rate: ClientRateLimit, client: string, count: number): number => Array.from({ length: count }, () => rate.take(client)).filter(Boolean).length;

test('a client gets its burst at once, then the rate; other clients are not touched', (t) => {
  const { rate, advance } = limit(10, 20);
  t.after(() => rate.close());
  assert.equal(takes(rate, 'ip:a', 25), 20, 'the burst');
  assert.equal(takes(rate, 'ip:b', 5), 5, 'another client has its own bucket');
  advance(100);
  assert.equal(takes(rate, 'ip:a', 5), 1, '10 per second: one token in 100 ms');
  advance(1000);
  assert.equal(takes(rate, 'ip:a', 15), 10);
  advance(60_000);
  assert.equal(takes(rate, 'ip:a', 25), 20, 'refilled no further than the burst');
});

test('the burst defaults to one second of the rate, and to at least one request', (t) => {
  const { rate } = limit(7);
  t.after(() => rate.close());
  assert.equal(rate.burst, 7);
  assert.equal(takes(rate, 'ip:a', 10), 7);
  const { rate: slow, advance } = limit(0.5);
  t.after(() => slow.close());
  assert.equal(slow.burst, 1);
  assert.equal(takes(slow, 'ip:a', 3), 1);
  advance(1000);
  assert.equal(takes(slow, 'ip:a', 3), 0, 'half a token after a second');
  advance(1000);
  assert.equal(takes(slow, 'ip:a', 3), 1);
});

test('a sweep forgets the clients whose buckets are full again, and keeps the others', (t) => {
  const { rate, advance } = limit(10, 10);
  t.after(() => rate.close());
  takes(rate, 'ip:a', 10);
  takes(rate, 'ip:b', 1);
  advance(200);
  rate.sweep();
  assert.equal(rate.clients, 1, 'b has refilled its one token; a has 2 of 10');
  advance(1000);
  rate.sweep();
  assert.equal(rate.clients, 0);
  assert.equal(takes(rate, 'ip:a', 12), 10, 'a forgotten client starts with a full bucket');
});
