import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChainCursor } from '../../src/subs/chain-cursor.js';
import { HeadTree, labels, sourceOf } from '../support/head-tree.js';
import type { TestHead } from '../support/head-tree.js';

const FAR = { deadline: Number.MAX_SAFE_INTEGER };

async function cursorOver(chain: TestHead[]): Promise<ChainCursor<TestHead>> {
  const cursor = new ChainCursor<TestHead>();
  const tree = new HeadTree();
  for (const head of chain) await cursor.advance(head, sourceOf(tree), FAR);
  return cursor;
}

describe('ChainCursor: plan and commit (a step counts only once its logs are in hand)', () => {
  it('plan() computes the step without changing the cursor', async () => {
    const tree = new HeadTree();
    const root = tree.root(0n, 'a0');
    const a = [root, ...tree.extend(root, 3, 'a')];
    const cursor = await cursorOver(a);
    const ahead = tree.extend(a.at(-1)!, 3, 'a');
    const step = await cursor.plan(ahead.at(-1)!, sourceOf(tree), FAR);
    assert.deepEqual(labels(step.result.deliver), ['a4', 'a5', 'a6']);
    assert.equal(cursor.last, a.at(-1), 'nothing applied yet');
    assert.equal(cursor.has(ahead[0]!.hash), false);
    cursor.commit(step);
    assert.equal(cursor.last, ahead.at(-1));
    assert.deepEqual(labels(cursor.snapshot()), ['a0', 'a1', 'a2', 'a3', 'a4', 'a5', 'a6']);
  });

  it('an uncommitted step (its logs could not be fetched) is planned again from the same place', async () => {
    const tree = new HeadTree();
    const root = tree.root(0n, 'a0');
    const a = [root, ...tree.extend(root, 2, 'a')];
    const cursor = await cursorOver(a);
    const ahead = tree.extend(a.at(-1)!, 2, 'a');
    await cursor.plan(ahead[1]!, sourceOf(tree), FAR); // dropped: the fetch that followed failed
    const again = await cursor.plan(ahead[1]!, sourceOf(tree), FAR);
    assert.deepEqual(labels(again.result.deliver), ['a3', 'a4'], 'the whole gap is replayed again');
  });

  it('refuses a stale plan: a step committed meanwhile would be undone', async () => {
    const tree = new HeadTree();
    const root = tree.root(0n, 'a0');
    const a = [root, ...tree.extend(root, 2, 'a')];
    const cursor = await cursorOver(a);
    const [a3, a4] = tree.extend(a.at(-1)!, 2, 'a');
    const stale = await cursor.plan(a4!, sourceOf(tree), FAR);
    cursor.commit(await cursor.plan(a3!, sourceOf(tree), FAR));
    assert.throws(() => cursor.commit(stale), /moved since this step was planned/);
    assert.equal(cursor.last, a3);
  });

  it('a clone taken between plan and commit keeps the state before the step', async () => {
    const tree = new HeadTree();
    const root = tree.root(0n, 'a0');
    const a = [root, ...tree.extend(root, 2, 'a')];
    const cursor = await cursorOver(a);
    const ahead = tree.extend(a.at(-1)!, 2, 'a');
    const step = await cursor.plan(ahead[1]!, sourceOf(tree), FAR);
    const clone = cursor.clone();
    cursor.commit(step);
    assert.equal(clone.last, a.at(-1), 'a group split off before the commit replays the step itself');
    const replay = await clone.advance(ahead[1]!, sourceOf(tree), FAR);
    assert.deepEqual(labels(replay.deliver), ['a3', 'a4']);
  });

  it('plan() refuses to overlap another pending plan', async () => {
    const tree = new HeadTree();
    const root = tree.root(0n, 'a0');
    const a = [root, ...tree.extend(root, 2, 'a')];
    const cursor = await cursorOver(a);
    const ahead = tree.extend(a.at(-1)!, 3, 'a');
    const slow = { ...sourceOf(tree), byHash: (hash: string) => new Promise<TestHead | null>((resolve) => setTimeout(() => resolve(tree.get(hash) ?? null), 10)) };
    const first = cursor.plan(ahead.at(-1)!, slow, FAR);
    await assert.rejects(cursor.plan(ahead.at(-1)!, slow, FAR), /another advance is pending/);
    await first;
  });
});
