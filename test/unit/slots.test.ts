import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Slots } from '../../src/runtime/slots.js';

test('at most `size` pieces of work run at once; the rest start in the order they came, as slots free up', async () => {
  const slots = new Slots(2);
  const started: number[] = [];
  const finish: Array<() => void> = [];
  const runs = [0, 1, 2, 3].map((n) =>
    slots.run(async () => {
      started.push(n);
      await new Promise<void>((resolve) => finish.push(resolve));
      return n;
    }),
  );
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(started, [0, 1]);
  assert.equal(slots.waiting, 2);
  finish[1]!();
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(started, [0, 1, 2]);
  finish[0]!();
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(started, [0, 1, 2, 3]);
  finish[2]!();
  finish[3]!();
  assert.deepEqual(await Promise.all(runs), [0, 1, 2, 3]);
  assert.equal(slots.waiting, 0);
});

test('work that fails frees its slot', async () => {
  const slots = new Slots(1);
  await assert.rejects(slots.run(() => Promise.reject(new Error('node gone'))), /node gone/);
  assert.equal(await slots.run(() => Promise.resolve('next')), 'next');
});

test('a size that is not a positive integer is refused, naming its setting', () => {
  assert.throws(() => new Slots(0, 'StreamCalls concurrency'), /StreamCalls concurrency must be a positive integer, got 0/);
});

test('urgent work takes the next free slot before the work waiting that is not, each kind in its order', async () => {
  const slots = new Slots(1);
  const started: string[] = [];
  const finish: Array<() => void> = [];
  const piece = (name: string) => async (): Promise<void> => {
    started.push(name);
    await new Promise<void>((resolve) => finish.push(resolve));
  };
  const runs = [slots.run(piece('bulk 1')), slots.run(piece('bulk 2')), slots.run(piece('bulk 3')), slots.run(piece('urgent 1'), true), slots.run(piece('urgent 2'), true)];
  for (let done = 0; done < runs.length; done++) {
    await new Promise((resolve) => setImmediate(resolve));
    finish[done]!();
  }
  await Promise.all(runs);
  assert.deepEqual(started, ['bulk 1', 'urgent 1', 'urgent 2', 'bulk 2', 'bulk 3']);
});
