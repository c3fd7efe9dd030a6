import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FairQueue } from '../../src/upstream/fair-queue.js';

interface W {
  client: string;
  n: number;
}
const w = (client: string, n: number): W => ({ client, n });
const drainOrder = (queue: FairQueue<W>): string[] => {
  const order: string[] = [];
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) order.push(`${next.client}${next.n}`);
  return order;
};

test('clients are served in turn, each in its own order', () => {
  const queue = new FairQueue<W>(100);
  for (let n = 1; n <= 4; n++) queue.push(w('a', n));
  queue.push(w('b', 1));
  queue.push(w('c', 1));
  queue.push(w('b', 2));
  assert.equal(queue.size, 7);
  assert.deepEqual(drainOrder(queue), ['a1', 'b1', 'c1', 'a2', 'b2', 'a3', 'a4']);
  assert.equal(queue.size, 0);
});

test('a client that comes back after its line emptied joins the end of the round', () => {
  const queue = new FairQueue<W>(100);
  queue.push(w('a', 1));
  queue.push(w('b', 1));
  assert.equal(queue.shift()?.client, 'a');
  queue.push(w('a', 2));
  assert.deepEqual(drainOrder(queue), ['b1', 'a2']);
});

test('full: a newcomer takes the place of the newest call of the client with the most waiting', () => {
  const queue = new FairQueue<W>(4);
  for (let n = 1; n <= 4; n++) assert.equal(queue.push(w('a', n)), undefined);
  assert.deepEqual(queue.push(w('b', 1)), w('a', 4));
  assert.deepEqual(queue.push(w('b', 2)), w('a', 3));
  assert.deepEqual(queue.push(w('b', 3)), w('b', 3), 'b would hold more than a: refused');
  assert.deepEqual(queue.push(w('a', 5)), w('a', 5), 'a already holds its share');
  assert.equal(queue.size, 4);
  assert.deepEqual(drainOrder(queue), ['a1', 'b1', 'a2', 'b2']);
});

test('a queue of capacity 0 refuses every call', () => {
  const queue = new FairQueue<W>(0);
  assert.deepEqual(queue.push(w('a', 1)), w('a', 1));
  assert.equal(queue.shift(), undefined);
});

test('remove takes a timed-out waiter out once; drain empties the queue', () => {
  const queue = new FairQueue<W>(10);
  const waiters = [w('a', 1), w('b', 1), w('a', 2)];
  for (const waiter of waiters) queue.push(waiter);
  assert.equal(queue.remove(waiters[1]!), true);
  assert.equal(queue.remove(waiters[1]!), false);
  assert.equal(queue.size, 2);
  assert.deepEqual(queue.drain(), [waiters[0], waiters[2]]);
  assert.equal(queue.size, 0);
  assert.equal(queue.shift(), undefined);
});
