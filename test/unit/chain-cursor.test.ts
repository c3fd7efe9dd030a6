import { performance } from 'node:perf_hooks';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChainCursor, UNLINKED_STEPS_BEFORE_JUMP, UnknownParentError } from '../../src/subs/chain-cursor.js';
import type { AdvanceBounds, AdvanceResult } from '../../src/subs/chain-cursor.js';
import { HeadSubscriber } from '../support/head-subscriber.js';
import { HeadTree, labels, randomUpstream, sourceOf } from '../support/head-tree.js';
import type { TestHead } from '../support/head-tree.js';

const FAR = { deadline: Number.MAX_SAFE_INTEGER } satisfies AdvanceBounds;

/** A cursor that has delivered `chain` one head at a time (plain extensions). */
async function cursorAt(chain: TestHead[], capacity?: number): Promise<ChainCursor<TestHead>> {
  const cursor = new ChainCursor<TestHead>(capacity === undefined ? {} : { capacity });
  const noFetch = { known: () => undefined, byHash: () => Promise.reject(new Error('extension must not fetch')), byNumber: () => Promise.reject(new Error('extension must not fetch')) };
  for (const head of chain) await cursor.advance(head, noFetch, FAR);
  return cursor;
}

function view(result: AdvanceResult<TestHead>): { deliver: string[]; orphaned: string[]; truncated: boolean } {
  return { deliver: labels(result.deliver), orphaned: labels(result.orphaned), truncated: result.truncated };
}

const NOTHING = { deliver: [], orphaned: [], truncated: false };

/** a0..a12 */
function baseChain(): { tree: HeadTree; a: TestHead[] } {
  const tree = new HeadTree();
  const root = tree.root(0n, 'a0');
  return { tree, a: [root, ...tree.extend(root, 12, 'a')] };
}

function at<T>(list: readonly T[], i: number): T {
  const item = list[i];
  assert.ok(item !== undefined, `no element ${i}`);
  return item;
}

describe('ChainCursor: linking', () => {
  it('delivers the first head as is', async () => {
    const { tree, a } = baseChain();
    const cursor = new ChainCursor<TestHead>();
    const source = sourceOf(tree);
    assert.equal(cursor.last, undefined);
    assert.deepEqual(view(await cursor.advance(at(a, 7), source, FAR)), { deliver: ['a7'], orphaned: [], truncated: false });
    assert.equal(cursor.last, at(a, 7));
    assert.ok(cursor.has(at(a, 7).hash));
    assert.deepEqual(source.calls, []);
  });

  it('extends without fetching when the parent is the last head', async () => {
    const { tree, a } = baseChain();
    const cursor = await cursorAt(a.slice(0, 11));
    const source = sourceOf(tree);
    assert.deepEqual(view(await cursor.advance(at(a, 11), source, FAR)), { deliver: ['a11'], orphaned: [], truncated: false });
    assert.deepEqual(source.calls, []);
    assert.deepEqual(labels(cursor.snapshot(8n)), ['a9', 'a10', 'a11']);
  });

  it('drops a duplicate and an already delivered older head without fetching', async () => {
    const { tree, a } = baseChain();
    const cursor = await cursorAt(a);
    const source = sourceOf(tree);
    assert.deepEqual(view(await cursor.advance(at(a, 12), source, FAR)), NOTHING);
    assert.deepEqual(view(await cursor.advance(at(a, 9), source, FAR)), NOTHING);
    assert.deepEqual(source.calls, []);
    assert.equal(cursor.last, at(a, 12));
  });

  it('fills a gap with the heights between, fetched at once, linked by parent hash to the last delivered head', async () => {
    const { tree, a } = baseChain();
    const cursor = await cursorAt(a.slice(0, 9));
    const source = sourceOf(tree);
    assert.deepEqual(view(await cursor.advance(at(a, 12), source, FAR)),
      { deliver: ['a9', 'a10', 'a11', 'a12'], orphaned: [], truncated: false });
    assert.deepEqual(source.numbers, [11n, 10n, 9n]);
    assert.deepEqual(source.calls, []);
    assert.deepEqual(labels(cursor.snapshot(7n)), ['a8', 'a9', 'a10', 'a11', 'a12']);
  });

  it('handles out-of-order notifications: a late older head is dropped, a late unknown one waits for its branch', async () => {
    const { tree, a } = baseChain();
    const cursor = await cursorAt(a.slice(0, 11)); // a0..a10
    const source = sourceOf(tree);
    await cursor.advance(at(a, 12), source, FAR); // delivers a11, a12
    assert.deepEqual(view(await cursor.advance(at(a, 11), source, FAR)), NOTHING);
    const b11 = tree.child(at(a, 10), 'b11');
    assert.deepEqual(view(await cursor.advance(b11, source, FAR)), NOTHING);
    const b12 = tree.child(b11, 'b12');
    assert.deepEqual(view(await cursor.advance(b12, source, FAR)),
      { deliver: ['b11', 'b12'], orphaned: ['a12', 'a11'], truncated: false });
    assert.equal(cursor.last, b12);
    assert.ok(!cursor.has(at(a, 12).hash));
  });
});

describe('ChainCursor: reorgs', () => {
  it('replaces the last head at the same height (depth 1)', async () => {
    const { tree, a } = baseChain();
    const cursor = await cursorAt(a);
    const b12 = tree.child(at(a, 11), 'b12');
    assert.deepEqual(view(await cursor.advance(b12, sourceOf(tree), FAR)),
      { deliver: ['b12'], orphaned: ['a12'], truncated: false });
  });

  for (const depth of [1, 2, 3, 5, 8]) {
    for (const [shape, length] of [['lower', depth - 1], ['same', depth], ['higher', depth + 2]] as const) {
      if (length < 1) continue;
      it(`delivers from the fork point: depth ${depth}, new tip at ${shape} height`, async () => {
        const { tree, a } = baseChain();
        const cursor = await cursorAt(a);
        const fork = at(a, 12 - depth);
        const branch = tree.extend(fork, length, 'b');
        const source = sourceOf(tree);
        if (shape === 'lower') {
          // Below the tip: waited for (no fetch) until the branch reaches the tip's height.
          assert.deepEqual(view(await cursor.advance(at(branch, branch.length - 1), source, FAR)), NOTHING);
          assert.deepEqual(source.calls, []);
          branch.push(tree.child(at(branch, branch.length - 1)));
        }
        const head = at(branch, branch.length - 1);
        const result = await cursor.advance(head, source, FAR);
        assert.deepEqual(view(result), {
          deliver: labels(branch),
          orphaned: labels(a.slice(13 - depth).reverse()),
          truncated: false,
        });
        assert.equal(at(result.deliver, 0).parentHash, fork.hash);
        // The heights above the old tip are fetched at once, the rest of the walk by hash.
        const aboveTip = Math.max(0, Number(head.number - at(a, 12).number) - 1);
        assert.equal(source.numbers.length, aboveTip);
        assert.equal(source.calls.length, branch.length - 1 - aboveTip);
        assert.deepEqual(cursor.snapshot(fork.number - 1n), [fork, ...branch]);
        for (const orphan of result.orphaned) assert.ok(!cursor.has(orphan.hash));
      });
    }
  }

  it('handles a reorg combined with a gap', async () => {
    const { tree, a } = baseChain();
    const cursor = await cursorAt(a.slice(0, 11)); // tip a10
    const branch = tree.extend(at(a, 8), 7, 'b'); // b9..b15
    assert.deepEqual(view(await cursor.advance(at(branch, 6), sourceOf(tree), FAR)),
      { deliver: ['b9', 'b10', 'b11', 'b12', 'b13', 'b14', 'b15'], orphaned: ['a10', 'a9'], truncated: false });
  });

  it('re-delivers an orphaned branch when it becomes canonical again', async () => {
    const { tree, a } = baseChain();
    const cursor = await cursorAt(a);
    const source = sourceOf(tree);
    const b = tree.extend(at(a, 10), 2, 'b');
    await cursor.advance(at(b, 1), source, FAR);
    assert.ok(!cursor.has(at(a, 12).hash));
    const a13 = tree.child(at(a, 12), 'a13');
    assert.deepEqual(view(await cursor.advance(a13, source, FAR)),
      { deliver: ['a11', 'a12', 'a13'], orphaned: ['b12', 'b11'], truncated: false });
    assert.ok(cursor.has(at(a, 11).hash));
  });
});

describe('ChainCursor: heads below the tip (the node in use is behind)', () => {
  it('drops a head of the delivered chain without fetching, also one older than the buffer', async () => {
    const { tree, a } = baseChain();
    const cursor = await cursorAt(a, 4); // remembers a9..a12
    const source = sourceOf(tree);
    assert.deepEqual(view(await cursor.advance(at(a, 10), source, FAR)), NOTHING);
    assert.deepEqual(view(await cursor.advance(at(a, 6), source, FAR)), NOTHING);
    assert.deepEqual(source.calls, []);
    assert.equal(cursor.last, at(a, 12));
  });

  it('waits on a node still on the branch a reorg orphaned, then goes on from its heads', async () => {
    const { tree, a } = baseChain();
    const cursor = await cursorAt(a.slice(0, 11)); // a0..a10
    const source = sourceOf(tree);
    const b = tree.extend(at(a, 8), 3, 'b'); // b9..b11: the reorg the stream followed
    await cursor.advance(at(b, 2), source, FAR);
    // Failover onto a node that has not seen it: its head is a9, two below the tip.
    assert.deepEqual(view(await cursor.advance(at(a, 9), source, FAR)), NOTHING);
    assert.deepEqual(view(await cursor.advance(at(a, 10), source, FAR)), NOTHING, 'a head at height 10 is still below the tip');
    // It catches up onto the delivered branch: nothing again, then the next head links.
    for (const head of b) assert.deepEqual(view(await cursor.advance(head, source, FAR)), NOTHING);
    const b12 = tree.child(at(b, 2), 'b12');
    assert.deepEqual(view(await cursor.advance(b12, source, FAR)), { deliver: ['b12'], orphaned: [], truncated: false });
    assert.deepEqual(source.calls, [at(b, 1).hash, at(b, 0).hash], 'only the reorg itself was walked');
    assert.deepEqual(labels(cursor.snapshot(8n)), ['b9', 'b10', 'b11', 'b12']);
  });

  it('waits on a node at the tip height on the branch a reorg orphaned, and on a head descending from it', async () => {
    const { tree, a } = baseChain();
    const source = sourceOf(tree);
    // Depth 1, same height: a12 replaced by b12. A node that has not seen it still has a12.
    const sameHeight = await cursorAt(a);
    const b12 = tree.child(at(a, 11), 'b12');
    await sameHeight.advance(b12, source, FAR);
    assert.deepEqual(view(await sameHeight.advance(at(a, 12), source, FAR)), NOTHING, 'a12 is not delivered again');
    assert.deepEqual(view(await sameHeight.advance(b12, source, FAR)), NOTHING, 'the node catches up');
    assert.deepEqual(view(await sameHeight.advance(tree.child(b12, 'b13'), source, FAR)), { deliver: ['b13'], orphaned: [], truncated: false });
    // a11, a12 replaced by b11, b12; the node behind went on from a12 to a13, at the tip's height now.
    const descendant = await cursorAt(a.slice(0, 12)); // a0..a11
    const b = tree.extend(at(a, 10), 2, 'b'); // b11, b12
    await descendant.advance(at(b, 1), source, FAR);
    assert.deepEqual(view(await descendant.advance(at(a, 12), source, FAR)), NOTHING, 'a12, at the tip height, descends from the orphaned a11');
    // Once the old branch grows past the tip, it is a real reorg back to it.
    const a13 = tree.child(at(a, 12), 'a13');
    assert.deepEqual(view(await descendant.advance(a13, source, FAR)), { deliver: ['a11', 'a12', 'a13'], orphaned: ['b12', 'b11'], truncated: false });
  });

  it('delivers a reorg to a shorter branch from the fork point once the branch reaches the tip', async () => {
    const { tree, a } = baseChain();
    const source = sourceOf(tree);
    const b = tree.extend(at(a, 8), 5, 'b'); // b9..b13, fork at a8

    const reaching = await cursorAt(a); // tip a12
    for (const head of b.slice(0, 3)) assert.deepEqual(view(await reaching.advance(head, source, FAR)), NOTHING);
    assert.deepEqual(view(await reaching.advance(at(b, 3), source, FAR)),
      { deliver: ['b9', 'b10', 'b11', 'b12'], orphaned: ['a12', 'a11', 'a10', 'a9'], truncated: false });

    const passing = await cursorAt(a);
    assert.deepEqual(view(await passing.advance(at(b, 1), source, FAR)), NOTHING);
    assert.deepEqual(view(await passing.advance(at(b, 4), source, FAR)),
      { deliver: ['b9', 'b10', 'b11', 'b12', 'b13'], orphaned: ['a12', 'a11', 'a10', 'a9'], truncated: false });
  });

  it('applies the bounds once the branch reaches the tip: a fork older than the buffer or past maxReplayBlocks jumps', async () => {
    const { tree, a } = baseChain();
    const b = tree.extend(at(a, 6), 6, 'b'); // b7..b12, fork at a6
    const old = await cursorAt(a, 4); // remembers a9..a12
    assert.deepEqual(view(await old.advance(at(b, 0), sourceOf(tree), FAR)), NOTHING);
    assert.deepEqual(view(await old.advance(at(b, 5), sourceOf(tree), FAR)),
      { deliver: ['b12'], orphaned: ['a12', 'a11', 'a10', 'a9'], truncated: true });
    assert.deepEqual(old.snapshot(), [at(b, 5)]);

    const far = await cursorAt(a);
    assert.deepEqual(view(await far.advance(at(b, 5), sourceOf(tree), { ...FAR, maxReplayBlocks: 3 })),
      { deliver: ['b12'], orphaned: ['a12', 'a11', 'a10', 'a9', 'a8', 'a7'], truncated: true });
  });
});

describe('ChainCursor: bounds and truncation', () => {
  it('a parent the source lacks fails the step, to be tried again; one found then links the gap', async () => {
    const { tree, a } = baseChain();
    const cursor = await cursorAt(a.slice(0, 9)); // tip a8
    // A backend behind a load balancer a moment behind: null once.
    await assert.rejects(cursor.advance(at(a, 12), sourceOf(tree, { unknown: [at(a, 10).hash], unknownNumbers: [10n] }), FAR), UnknownParentError);
    assert.equal(cursor.last, at(a, 8));
    assert.deepEqual(view(await cursor.advance(at(a, 12), sourceOf(tree), FAR)),
      { deliver: ['a9', 'a10', 'a11', 'a12'], orphaned: [], truncated: false });
    // A head whose parent nobody has is not delivered, and the next linked head resets the count.
    const x20 = tree.root(20n, 'x20');
    await assert.rejects(cursor.advance(tree.child(x20, 'x21'), sourceOf(tree, { unknown: [x20.hash] }), FAR), UnknownParentError);
    assert.equal(cursor.last, at(a, 12));
  });

  it('jumps when the source cannot link a gap in UNLINKED_STEPS_BEFORE_JUMP steps in a row, then links from the new head', async () => {
    const { tree, a } = baseChain();
    const cursor = await cursorAt(a.slice(0, 9)); // tip a8
    const source = sourceOf(tree, { unknown: [at(a, 10).hash], unknownNumbers: [10n] });
    for (let step = 1; step < UNLINKED_STEPS_BEFORE_JUMP; step++) await assert.rejects(cursor.advance(at(a, 12), source, FAR), UnknownParentError);
    assert.deepEqual(view(await cursor.advance(at(a, 12), source, FAR)),
      { deliver: ['a12'], orphaned: [], truncated: true });
    assert.deepEqual(cursor.snapshot(), [at(a, 12)]);
    assert.ok(!cursor.has(at(a, 8).hash));
    const a13 = tree.child(at(a, 12), 'a13');
    assert.deepEqual(view(await cursor.advance(a13, source, FAR)), { deliver: ['a13'], orphaned: [], truncated: false });
  });

  it('lists the delivered heads a failed reorg walk proved orphaned, and those below it the node no longer has', async () => {
    const { tree, a } = baseChain();
    const cursor = await cursorAt(a);
    const b = tree.extend(at(a, 7), 6, 'b'); // b8..b13
    const source = sourceOf(tree, { unknown: [at(b, 2).hash] }); // walk reaches b11, cannot fetch b10
    for (let step = 1; step < UNLINKED_STEPS_BEFORE_JUMP; step++) await assert.rejects(cursor.advance(at(b, 5), source, FAR), UnknownParentError);
    assert.deepEqual(view(await cursor.advance(at(b, 5), source, FAR)),
      { deliver: ['b13'], orphaned: ['a12', 'a11', 'a10', 'a9', 'a8'], truncated: true });
  });

  it('delivers exactly maxReplayBlocks and jumps beyond', async () => {
    const { tree, a } = baseChain();
    const exact = await cursorAt(a.slice(0, 9)); // tip a8, a12 needs 4 blocks
    assert.deepEqual(view(await exact.advance(at(a, 12), sourceOf(tree), { ...FAR, maxReplayBlocks: 4 })),
      { deliver: ['a9', 'a10', 'a11', 'a12'], orphaned: [], truncated: false });

    const over = await cursorAt(a.slice(0, 9));
    const source = sourceOf(tree);
    assert.deepEqual(view(await over.advance(at(a, 12), source, { ...FAR, maxReplayBlocks: 3 })),
      { deliver: ['a12'], orphaned: [], truncated: true });
    assert.deepEqual(source.calls, [], 'a gap longer than the bound is known without walking it');
    assert.deepEqual(source.numbers, [8n], 'one call asks whether the node still has the tip');
  });

  it('replays at most 128 blocks by default', async () => {
    const tree = new HeadTree();
    const root = tree.root(0n, 'c0');
    const chain = tree.extend(root, 129, 'c');
    const filled = await cursorAt([root]);
    assert.equal((await filled.advance(at(chain, 127), sourceOf(tree), FAR)).deliver.length, 128);
    const jumped = await cursorAt([root]);
    assert.equal((await jumped.advance(at(chain, 128), sourceOf(tree), FAR)).truncated, true);
  });

  it('jumps when a reorg walk exceeds maxReplayBlocks', async () => {
    const { tree, a } = baseChain();
    const cursor = await cursorAt(a);
    const b = tree.extend(at(a, 4), 8, 'b'); // b5..b12, fork at a4
    const source = sourceOf(tree);
    assert.deepEqual(view(await cursor.advance(at(b, 7), source, { ...FAR, maxReplayBlocks: 5 })),
      { deliver: ['b12'], orphaned: ['a12', 'a11', 'a10', 'a9', 'a8', 'a7', 'a6', 'a5'], truncated: true });
    assert.equal(source.calls.length, 4);
  });

  it('a jump over a gap lists the delivered heads a reorg in the gap took, found in a few calls', async () => {
    const tree = new HeadTree();
    const root = tree.root(0n, 'a0');
    const a = [root, ...tree.extend(root, 255, 'a')]; // a0..a255, as many as the cursor keeps
    const b = tree.extend(at(a, 249), 40, 'b'); // b250..b289: a250..a255 reorged away, then the gap
    const cursor = await cursorAt(a);
    const source = sourceOf(tree);
    assert.deepEqual(view(await cursor.advance(at(b, 39), source, { ...FAR, maxReplayBlocks: 16 })),
      { deliver: ['b289'], orphaned: ['a255', 'a254', 'a253', 'a252', 'a251', 'a250'], truncated: true });
    assert.deepEqual(source.calls, []);
    assert.ok(source.numbers.length <= 9, `a binary search: ${source.numbers.length} calls`);

    // Without a reorg: one call, nothing orphaned.
    const more = tree.extend(at(a, 255), 40, 'a'); // a256..a295
    const plain = await cursorAt(a);
    const growing = sourceOf(tree, { canonical: at(more, 39) });
    assert.deepEqual(view(await plain.advance(at(more, 39), growing, { ...FAR, maxReplayBlocks: 16 })),
      { deliver: ['a295'], orphaned: [], truncated: true });
    assert.deepEqual(growing.numbers, [255n]);
  });

  it('a jump at the deadline lists the delivered heads the node no longer has below where the walk stopped', async (t) => {
    const { tree, a } = baseChain();
    let now = 1_000;
    t.mock.method(performance, 'now', () => now);
    const b = tree.extend(at(a, 6), 8, 'b'); // b7..b14, fork at a6
    const cursor = await cursorAt(a);
    const source = sourceOf(tree, { onFetch: () => { now += 10; } });
    assert.deepEqual(view(await cursor.advance(at(b, 7), source, { deadline: now + 15 })),
      { deliver: ['b14'], orphaned: ['a12', 'a11', 'a10', 'a9', 'a8', 'a7'], truncated: true });
    assert.equal(source.calls.length, 2, 'the walk stopped at b12');
  });

  it('a height the node does not answer proves nothing: only heads proven gone are listed', async () => {
    const { tree, a } = baseChain();
    const b = tree.extend(at(a, 8), 10, 'b'); // b9..b18, fork at a8
    const cursor = await cursorAt(a);
    const source = sourceOf(tree, { unknownNumbers: [9n] });
    // a12 is gone, a6 is there, height 9 is not answered: a9..a11 are not proven gone.
    assert.deepEqual(view(await cursor.advance(at(b, 9), source, { ...FAR, maxReplayBlocks: 4 })),
      { deliver: ['b18'], orphaned: ['a12'], truncated: true });
    assert.deepEqual(source.numbers, [12n, 6n, 9n]);
  });

  it('stops a walk nobody waits for any more, delivering nothing', async () => {
    const { tree, a } = baseChain();
    const cursor = await cursorAt(a.slice(0, 5)); // tip a4
    let moved = false;
    // The node answers none of the gap's heights by number: the walk asks by hash, one at a time.
    const source = sourceOf(tree, { onFetch: (hash) => { if (hash === at(a, 10).hash) moved = true; }, unknownNumbers: [5n, 6n, 7n, 8n, 9n, 10n, 11n] });
    assert.deepEqual(view(await cursor.advance(at(a, 12), source, { ...FAR, abandoned: () => moved })), NOTHING);
    assert.equal(source.calls.length, 2, 'no fetch after the clients left');
    assert.equal(cursor.last, at(a, 4));
  });

  it('jumps when the fork point is older than the buffer', async () => {
    const { tree, a } = baseChain();
    const cursor = await cursorAt(a, 3); // a10..a12
    const b = tree.extend(at(a, 8), 5, 'b'); // b9..b13
    const source = sourceOf(tree);
    assert.deepEqual(view(await cursor.advance(at(b, 4), source, FAR)),
      { deliver: ['b13'], orphaned: ['a12', 'a11', 'a10'], truncated: true });
    assert.deepEqual(source.calls, [b[3], b[2], b[1]].map((h) => h?.hash), 'stops once below the buffer');
  });

  it('delivers a reorg deeper than the stream itself from the first block above the start, not as a jump', async () => {
    const { tree, a } = baseChain();
    const cursor = await cursorAt(a.slice(10)); // started at a10, nothing forgotten
    const b = tree.extend(at(a, 8), 5, 'b'); // b9..b13
    assert.deepEqual(view(await cursor.advance(at(b, 4), sourceOf(tree), FAR)),
      { deliver: ['b10', 'b11', 'b12', 'b13'], orphaned: ['a12', 'a11', 'a10'], truncated: false });
    assert.deepEqual(labels(cursor.snapshot()), ['b10', 'b11', 'b12', 'b13']);
  });

  it('waits on a head below the start of the stream on another branch, then delivers its branch as a reorg older than the stream', async () => {
    const { tree, a } = baseChain();
    const cursor = await cursorAt(a.slice(10)); // started at a10
    const b = tree.extend(at(a, 8), 5, 'b'); // b9..b13
    assert.deepEqual(view(await cursor.advance(at(b, 0), sourceOf(tree), FAR)), NOTHING);
    assert.deepEqual(view(await cursor.advance(at(b, 3), sourceOf(tree), FAR)),
      { deliver: ['b10', 'b11', 'b12'], orphaned: ['a12', 'a11', 'a10'], truncated: false });
    assert.deepEqual(view(await cursor.advance(at(b, 4), sourceOf(tree), FAR)), { deliver: ['b13'], orphaned: [], truncated: false });
  });

  it('still jumps when heads were forgotten for capacity, even after a reorg made the buffer shorter', async () => {
    const { tree, a } = baseChain();
    const cursor = await cursorAt(a, 4); // a9..a12, a0..a8 forgotten
    const c12 = tree.child(at(a, 11), 'c12');
    await cursor.advance(c12, sourceOf(tree), FAR); // a9..a11, c12
    const b = tree.extend(at(a, 7), 6, 'b'); // b8..b13
    assert.deepEqual(view(await cursor.advance(at(b, 5), sourceOf(tree), FAR)),
      { deliver: ['b13'], orphaned: ['c12', 'a11', 'a10', 'a9'], truncated: true });
  });

  it('jumps at the deadline, checked before every fetch', async (t) => {
    const { tree, a } = baseChain();
    let now = 1_000;
    t.mock.method(performance, 'now', () => now);
    // The node answers none of the gap's heights by number: the walk asks by hash, one at a time.
    const source = sourceOf(tree, { onFetch: () => { now += 10; }, unknownNumbers: [5n, 6n, 7n, 8n, 9n, 10n, 11n] });

    const passed = await cursorAt(a.slice(0, 5));
    assert.deepEqual(view(await passed.advance(at(a, 12), source, { deadline: 1_000 })),
      { deliver: ['a12'], orphaned: [], truncated: true });
    assert.deepEqual(source.calls, []);
    assert.deepEqual(source.numbers, [4n], 'the jump asks for its tip, nothing for the gap');

    const slow = await cursorAt(a.slice(0, 5)); // tip a4; a12 needs 7 fetches, 10 ms each
    assert.deepEqual(view(await slow.advance(at(a, 12), source, { deadline: now + 25 })),
      { deliver: ['a12'], orphaned: [], truncated: true });
    assert.equal(source.calls.length, 3);

    const inTime = await cursorAt(a.slice(0, 5));
    assert.equal((await inTime.advance(at(a, 12), source, { deadline: now + 71 })).deliver.length, 8);
  });
  it('fetches the heights of a gap at once: a replay one round trip per block would cut short at the deadline is delivered', async (t) => {
    const { tree, a } = baseChain();
    let now = 1_000;
    t.mock.method(performance, 'now', () => now);
    // Each answer arrives one 10 ms round trip after its request went out.
    const node = sourceOf(tree);
    const roundTrip = async <T>(answer: () => Promise<T>): Promise<T> => {
      const sentAt = now;
      await new Promise((resolve) => setImmediate(resolve));
      now = Math.max(now, sentAt + 10);
      return answer();
    };
    const source = {
      ...node,
      byNumber: (number: bigint) => roundTrip(() => node.byNumber(number)),
      byHash: (hash: string) => roundTrip(() => node.byHash(hash)),
    };
    const cursor = await cursorAt(a.slice(0, 5)); // tip a4: a5..a11 lie between it and a12
    assert.deepEqual(view(await cursor.advance(at(a, 12), source, { deadline: now + 25 })),
      { deliver: ['a5', 'a6', 'a7', 'a8', 'a9', 'a10', 'a11', 'a12'], orphaned: [], truncated: false });
    assert.equal(now, 1_010, 'one round trip for the seven heights');
  });

  it('fetches a long gap 128 heights at a time from the top, and stops at the deadline', async (t) => {
    const tree = new HeadTree();
    const root = tree.root(0n, 'a0');
    const chain = [root, ...tree.extend(root, 300, 'a')];
    let now = 1_000;
    t.mock.method(performance, 'now', () => now);
    const node = sourceOf(tree);
    // Each batch arrives one 10 ms round trip after it went out.
    const source = {
      ...node,
      byNumber: async (number: bigint) => {
        const sentAt = now;
        await new Promise((resolve) => setImmediate(resolve));
        now = Math.max(now, sentAt + 10);
        return node.byNumber(number);
      },
    };
    const cursor = await cursorAt([root]);
    const result = await cursor.advance(chain.at(-1)!, source, { deadline: now + 5, maxReplayBlocks: 1000 });
    assert.equal(result.truncated, true);
    const gap = node.numbers.filter((number) => number > 0n);
    assert.equal(gap.length, 128, 'one batch, then the deadline');
    assert.equal(gap[0], 299n);
  });

  it('takes the parents the source already holds without a call, fetching only the heights below them', async () => {
    const { tree, a } = baseChain();
    const cursor = await cursorAt(a.slice(0, 5)); // tip a4
    // Another stream's walk fetched a9..a11.
    const held = new Set([9, 10, 11].map((n) => at(a, n).hash));
    const source = { ...sourceOf(tree), known: (hash: string) => (held.has(hash) ? tree.get(hash) : undefined) };
    assert.deepEqual(labels((await cursor.advance(at(a, 12), source, FAR)).deliver), labels(a.slice(5, 13)));
    assert.deepEqual(source.numbers, [8n, 7n, 6n, 5n]);
    assert.deepEqual(source.calls, []);
  });
});

describe('ChainCursor: failure safety and housekeeping', () => {
  it('rethrows a failing source and leaves the buffer unchanged', async () => {
    const { tree, a } = baseChain();
    const cursor = await cursorAt(a.slice(0, 9));
    const before = cursor.snapshot();
    const b = tree.extend(at(a, 6), 6, 'b'); // b7..b12: a reorg walk through the buffer
    const source = sourceOf(tree, { failing: [at(b, 1).hash] });
    await assert.rejects(cursor.advance(at(b, 5), source, FAR), /upstream failed fetching/);
    assert.deepEqual(cursor.snapshot(), before);
    assert.equal(cursor.last, at(a, 8));
    assert.ok(cursor.has(at(a, 8).hash));
    const result = await cursor.advance(at(b, 5), sourceOf(tree), FAR);
    assert.deepEqual(labels(result.orphaned), ['a8', 'a7']);
  });

  it('rejects headers whose numbers do not match their links, changing nothing', async () => {
    const { tree, a } = baseChain();
    const cursor = await cursorAt(a.slice(0, 9));
    const liar: TestHead = { number: 15n, hash: '0x' + 'ee'.repeat(32), parentHash: at(a, 8).hash, label: 'liar' };
    await assert.rejects(cursor.advance(liar, sourceOf(tree), FAR), /inconsistent headers/);
    const wrongAnswer = { ...sourceOf(tree), byNumber: () => Promise.resolve(at(a, 3)), byHash: () => Promise.resolve(at(a, 3)) };
    await assert.rejects(cursor.advance(at(a, 12), wrongAnswer, FAR), /returned .* when asked for/);
    assert.equal(cursor.last, at(a, 8));
    assert.equal(cursor.size, 9);
  });

  it('refuses overlapping advances', async () => {
    const { tree, a } = baseChain();
    const cursor = await cursorAt(a.slice(0, 5));
    let release = (): void => {};
    const gate = new Promise<void>((resolve) => { release = resolve; });
    const slow = { ...sourceOf(tree), byHash: async (hash: string) => { await gate; return tree.get(hash) ?? null; } };
    const first = cursor.advance(at(a, 8), slow, FAR);
    await assert.rejects(cursor.advance(at(a, 9), sourceOf(tree), FAR), /another advance is pending/);
    release();
    assert.deepEqual(labels((await first).deliver), ['a5', 'a6', 'a7', 'a8']);
  });

  it('keeps at most capacity heads', async () => {
    const tree = new HeadTree();
    const root = tree.root(0n, 'c0');
    const chain = [root, ...tree.extend(root, 999, 'c')];
    const cursor = await cursorAt(chain, 16);
    assert.equal(cursor.size, 16);
    assert.deepEqual(cursor.snapshot(), chain.slice(-16));
    assert.ok(!cursor.has(at(chain, 983).hash));
    assert.ok(cursor.has(at(chain, 984).hash));
  });

  it('clones into an independent cursor', async () => {
    const { tree, a } = baseChain();
    const original = await cursorAt(a.slice(0, 11));
    const copy = original.clone();
    await copy.advance(at(a, 11), sourceOf(tree), FAR);
    const b11 = tree.child(at(a, 10), 'b11');
    await original.advance(b11, sourceOf(tree), FAR);
    assert.equal(copy.last, at(a, 11));
    assert.equal(original.last, b11);
    assert.ok(!original.has(at(a, 11).hash));
    assert.ok(!copy.has(b11.hash));
  });

  it('validates its options', async () => {
    assert.throws(() => new ChainCursor({ capacity: 0 }), RangeError);
    assert.throws(() => new ChainCursor({ capacity: 1.5 }), RangeError);
    const { tree, a } = baseChain();
    const cursor = await cursorAt(a.slice(0, 2));
    await assert.rejects(cursor.advance(at(a, 5), sourceOf(tree), { ...FAR, maxReplayBlocks: 0 }), RangeError);
  });
});

interface Scenario {
  seed: number;
  steps: number;
  capacity: number;
  maxReplayBlocks: number;
  /** blocks the chain grows before the final notification: with tight bounds a stale head may sit
   * above the tip where it cannot be placed */
  finalGrowth: number;
}

/** Feeds a random upstream's notifications through a cursor, checking the stream at every step. */
async function runScenario({ seed, steps, capacity, maxReplayBlocks, finalGrowth }: Scenario): Promise<HeadSubscriber> {
  const { tree, notifications, tip } = randomUpstream(seed, { steps, finalGrowth });
  const source = sourceOf(tree);
  const cursor = new ChainCursor<TestHead>({ capacity });
  const subscriber = new HeadSubscriber();
  for (const { head, note } of notifications) {
    const below = cursor.last;
    const result = await cursor.advance(head, source, { maxReplayBlocks, deadline: Number.MAX_SAFE_INTEGER });
    subscriber.apply(head, result, `seed ${seed} ${note}`);
    if (below !== undefined) assert.ok(cursor.last!.number >= below.number, `seed ${seed} ${note}: the stream never goes back below its tip`);
    // The buffer is the newest part of what the subscriber holds (evicted heads are not re-grown).
    const remembered = cursor.snapshot();
    assert.ok(remembered.length <= capacity && remembered.length > 0);
    assert.deepEqual(remembered, subscriber.chain.slice(-remembered.length), `seed ${seed} ${note}: buffer = stream`);
  }
  assert.equal(cursor.last, tip, `seed ${seed}: the stream ends at the final head`);
  // Everything the subscriber holds (since the last jump, if any) is exactly the canonical chain.
  const held = subscriber.chain;
  assert.deepEqual(held, tree.ancestry(tip, at(held, 0).number), `seed ${seed}: stream is the canonical chain`);
  return subscriber;
}

describe('ChainCursor: randomized streams', () => {
  it('keeps every guarantee without truncation when bounds are ample', async () => {
    for (let seed = 1; seed <= 60; seed++) {
      const subscriber = await runScenario({ seed, steps: 300, capacity: 256, maxReplayBlocks: 1_000, finalGrowth: 0 });
      assert.equal(subscriber.truncations, 0, `seed ${seed}: no truncation expected`);
    }
  });

  it('keeps the guarantees between jumps when bounds are tight', async () => {
    let truncations = 0;
    for (let seed = 101; seed <= 160; seed++) {
      truncations += (await runScenario({ seed, steps: 300, capacity: 8, maxReplayBlocks: 5, finalGrowth: 10 })).truncations;
    }
    assert.ok(truncations > 0, 'tight bounds must exercise truncation');
  });
});
