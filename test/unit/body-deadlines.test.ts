import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BodyDeadlines } from '../../src/server/body-deadlines.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test('bodies expire in the order they began, each once, and a finished body never does', async () => {
  const expired: string[] = [];
  const deadlines = new BodyDeadlines<string>(200, (body) => expired.push(body));
  deadlines.watch('first');
  deadlines.watch('finished');
  await sleep(150);
  deadlines.watch('second');
  deadlines.done('finished');
  await sleep(110);
  assert.deepEqual(expired, ['first'], 'the first past its deadline, the second not yet');
  await sleep(200);
  assert.deepEqual(expired, ['first', 'second']);
  assert.equal(deadlines.size, 0);
});

test('the timer runs only while a body is watched: done() on the last one stops it, and the test process can end', async () => {
  const expired: string[] = [];
  const deadlines = new BodyDeadlines<string>(100, (body) => expired.push(body));
  deadlines.watch('a');
  deadlines.done('a');
  deadlines.done('never watched');
  await sleep(150);
  assert.deepEqual(expired, []);
  deadlines.watch('b');
  deadlines.close();
  await sleep(150);
  assert.deepEqual(expired, []);
});
