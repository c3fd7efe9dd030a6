import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ORPHANS_REMEMBERED, ReorgTally } from '../../src/reorg-tally.js';
import { ChainCursor, type AdvanceBounds, type AdvanceResult } from '../../src/subs/chain-cursor.js';
import { HeadTree, labels, sourceOf, type TestHead } from '../support/head-tree.js';

const FAR = { deadline: Number.MAX_SAFE_INTEGER } satisfies AdvanceBounds;

/** A stream's cursor that delivered `heads` one at a time (its first the stream's start). */
async function streamAt(tree: HeadTree, heads: TestHead[]): Promise<ChainCursor<TestHead>> {
  const cursor = new ChainCursor<TestHead>();
  for (const head of heads) await cursor.advance(head, sourceOf(tree, { canonical: head }), FAR);
  return cursor;
}

/** The step a stream that delivered `heads` takes when its node's head is `head`. */
async function goesOver(tree: HeadTree, heads: TestHead[], head: TestHead, bounds: AdvanceBounds = FAR): Promise<AdvanceResult<TestHead>> {
  return (await streamAt(tree, heads)).advance(head, sourceOf(tree, { canonical: head }), bounds);
}

/** c0..c3, the branch a4..a6 a reorg left, and b4..b7 it took instead. */
function forked(): { tree: HeadTree; c: TestHead[]; a: TestHead[]; b: TestHead[] } {
  const tree = new HeadTree();
  const root = tree.root(0n, 'c0');
  const c = [root, ...tree.extend(root, 3, 'c')];
  const a = tree.extend(c[3]!, 3, 'a');
  const b = tree.extend(c[3]!, 4, 'b');
  return { tree, c, a, b };
}

function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

describe('ReorgTally', () => {
  it('counts one reorg once, whichever part of it each stream saw and in whatever order', async () => {
    const { tree, c, a, b } = forked();
    const [a4, a5, a6] = a as [TestHead, TestHead, TestHead];
    const b7 = b.at(-1)!;
    const steps = {
      'at the head': await goesOver(tree, [...c, a4, a5, a6], b7),
      'a block behind': await goesOver(tree, [...c, a4, a5], b7),
      'anchored above the fork point': await goesOver(tree, [a6], b7),
      'anchored above it, a block behind': await goesOver(tree, [a5], b7),
      'jumped (replayMaxBlocks 1)': await goesOver(tree, [...c, a4, a5], b7, { ...FAR, maxReplayBlocks: 1 }),
    };
    // What each orphaned: no one head is common to all.
    assert.deepEqual(Object.values(steps).map((step) => labels(step.orphaned)), [['a6', 'a5', 'a4'], ['a5', 'a4'], ['a6'], ['a5'], ['a5', 'a4']]);
    assert.ok(steps['jumped (replayMaxBlocks 1)'].truncated);
    for (const order of permutations(Object.keys(steps) as Array<keyof typeof steps>)) {
      const tally = new ReorgTally();
      const counted = order.filter((name) => tally.note(steps[name].orphaned, steps[name].deliver));
      assert.equal(counted.length, 1, `in the order ${order.join(', ')}: counted for ${counted.join(', ')}`);
    }
  });

  it('counts every reorg of a chain: one on the new branch, a deeper one, a return to a branch left before and a reorg off it again', async () => {
    const { tree, c, a, b } = forked();
    const source = () => sourceOf(tree, { canonical: tree.newest! });
    const stream = await streamAt(tree, [...c, ...a]);
    const tally = new ReorgTally();
    const step = async (head: TestHead): Promise<boolean> => {
      const result = await stream.advance(head, source(), FAR);
      assert.ok(result.orphaned.length > 0, `a reorg at ${head.label}`);
      return tally.note(result.orphaned, result.deliver);
    };
    assert.equal(await step(b.at(-1)!), true, 'a to b');
    assert.equal(await step(tree.extend(b[1]!, 3, 'd').at(-1)!), true, 'b6, b7 replaced by d6..d8');
    assert.equal(await step(tree.extend(a.at(-1)!, 3, 'a').at(-1)!), true, 'back to a, grown to a9');
    assert.equal(await step(tree.extend(c[2]!, 8, 'e').at(-1)!), true, 'a deeper one: c3 and a4..a9 replaced by e3..e10');
  });

  it('counts a deeper reorg of a counted one\'s fork point whichever stream reports it first', async () => {
    const { tree, c, a, b } = forked();
    // a4..a6 replaced by b4..b7 (counted); then c3 and b4..b7 replaced by a deeper branch.
    const first = await goesOver(tree, [...c, ...a], b.at(-1)!);
    const deeper = tree.extend(c[2]!, 6, 'e').at(-1)!;
    const atHead = await goesOver(tree, [...c, ...b], deeper);
    // A stream that had nothing above the fork point of the first: only c3 to take off.
    const atForkPoint = await goesOver(tree, c, deeper);
    assert.deepEqual(labels(atForkPoint.orphaned), ['c3']);
    for (const order of [[atForkPoint, atHead], [atHead, atForkPoint]]) {
      const tally = new ReorgTally();
      assert.equal(tally.note(first.orphaned, first.deliver), true);
      assert.equal(order.filter((step) => tally.note(step.orphaned, step.deliver)).length, 1, 'the deeper one counted once');
    }
  });

  it('forgets the oldest orphans past ORPHANS_REMEMBERED', () => {
    const tally = new ReorgTally();
    const orphan = (n: number) => [{ hash: `0x${n.toString(16)}`, parentHash: `0xparent${n}` }];
    assert.equal(tally.note(orphan(0), []), true);
    assert.equal(tally.note(orphan(0), []), false, 'the same reorg');
    for (let n = 1; n <= ORPHANS_REMEMBERED; n++) assert.equal(tally.note(orphan(n), []), true);
    assert.equal(tally.note(orphan(0), []), true, 'remembered no more');
    assert.equal(tally.note([], []), false, 'nothing orphaned');
  });
});
