import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OpenCalls, type OpenCall } from '../../src/server/open-calls.js';

const call = (name: string): OpenCall & { name: string } => ({ name, previousOpen: undefined, nextOpen: undefined });

test('calls are listed until deleted, from any place in the list', () => {
  const open = new OpenCalls<ReturnType<typeof call>>();
  const [a, b, c, d] = ['a', 'b', 'c', 'd'].map(call) as [ReturnType<typeof call>, ReturnType<typeof call>, ReturnType<typeof call>, ReturnType<typeof call>];
  for (const each of [a, b, c, d]) open.add(each);
  assert.equal(open.size, 4);
  open.delete(b); // a middle one
  assert.deepEqual(open.all().map((each) => each.name).sort(), ['a', 'c', 'd']);
  open.delete(d); // the newest
  open.delete(a); // the oldest
  assert.deepEqual(open.all().map((each) => each.name), ['c']);
  open.delete(c);
  assert.equal(open.size, 0);
  assert.deepEqual(open.all(), []);
  open.add(b);
  assert.deepEqual(open.all().map((each) => each.name), ['b']);
});

test('a walk over the copy may delete as it goes', () => {
  const open = new OpenCalls<ReturnType<typeof call>>();
  for (const name of ['a', 'b', 'c']) open.add(call(name));
  for (const each of open.all()) open.delete(each);
  assert.equal(open.size, 0);
});
