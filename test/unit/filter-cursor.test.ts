import assert from 'node:assert/strict';
import { test } from 'node:test';
import { filterCursor, REMEMBERED_BLOCKS, REORG_DEPTH } from '../../src/router/filter-cursor.js';

const hex = (n: number): string => `0x${n.toString(16)}`;
const log = (block: number, index: number, removed = false, branch = 'b') => ({
  blockNumber: hex(block),
  blockHash: `0x${block.toString(16).padStart(4, '0')}${branch.repeat(60)}`,
  logIndex: hex(index),
  removed,
});
const blockHash = (n: number): string => `0x${'a'.repeat(60)}${n.toString(16).padStart(4, '0')}`;

test('logs: a poll is passed on whole and moves covered to the head known when it was sent', () => {
  const cursor = filterCursor('logs', 10n)!;
  const answer = [log(11, 0), log(12, 0), log(12, 1)];
  assert.deepEqual(cursor.answered(answer, 11n), answer);
  assert.equal(cursor.covered, 11n);
  // A stale known head never moves covered back.
  assert.deepEqual(cursor.answered([], 9n), []);
  assert.equal(cursor.covered, 11n);
});

test('logs: the replay leaves out the blocks polls handed over past covered, and covers through the new head', () => {
  const cursor = filterCursor('logs', 10n)!;
  // The node was at 12 when polled, evmux knew 11: block 12's logs are handed over, past covered.
  cursor.answered([log(11, 0), log(12, 0)], 11n);
  // A node's filter hands over a block's logs all at once: block 12's are all handed over.
  const fromNewNode = [log(12, 0), log(12, 1), log(13, 0), log(13, 1)];
  assert.deepEqual(cursor.unsent(fromNewNode), [log(13, 0), log(13, 1)]);
  cursor.replayed([log(13, 0), log(13, 1)], 13n);
  assert.equal(cursor.covered, 13n);
});

test('logs: after a move the new filter\'s answers drop the replayed blocks until one covers the replayed head', () => {
  const cursor = filterCursor('logs', 10n)!;
  cursor.replayed([log(11, 0), log(12, 0)], 12n);
  // anvil's first answer repeats a past fromBlock; the filter was made before the head was read.
  assert.deepEqual(cursor.answered([log(5, 0), log(12, 0), log(13, 0)], 11n), [log(13, 0)]);
  // Still short of 12 when sent: the drop goes on.
  assert.deepEqual(cursor.answered([log(12, 0), log(14, 0)], 11n), [log(14, 0)]);
  // Sent at 12: from here on nothing is dropped by height (a reorg may bring new logs below it).
  assert.deepEqual(cursor.answered([log(15, 0)], 12n), [log(15, 0)]);
  assert.deepEqual(cursor.answered([log(12, 7, false, 'c')], 15n), [log(12, 7, false, 'c')]);
});

test('logs: a new node behind the old one reports nothing twice', () => {
  const cursor = filterCursor('logs', 10n)!;
  cursor.answered([log(11, 0), log(12, 0), log(13, 0)], 12n);
  // The new node is at 11: nothing to replay, and its filter reports 12 and 13 again later.
  cursor.replayed([], 11n);
  assert.equal(cursor.covered, 12n);
  assert.deepEqual(cursor.answered([log(12, 0), log(13, 0), log(14, 0)], 12n), [log(14, 0)]);
});

test('logs: a new node behind the old one that then takes another branch hands over that branch\'s logs', () => {
  const cursor = filterCursor('logs', 10n)!;
  cursor.answered([log(11, 0)], 11n);
  // The old node handed over block 12 and died; the chain replaced 12; the new node is at 11.
  cursor.answered([log(12, 0)], 12n);
  cursor.replayed([], 11n);
  // Its filter's first answer: anvil's repeat of a block from before the filter (dropped by number),
  // block 12 of the old branch (handed over), and the new branch's 12' and 13' (news).
  assert.deepEqual(
    cursor.answered([log(9, 0, false, 'c'), log(12, 0), log(12, 0, false, 'c'), log(13, 0, false, 'c')], 11n),
    [log(12, 0, false, 'c'), log(13, 0, false, 'c')],
  );
});

test('logs: removed logs always pass, and a log removed and then back in the same block is sent again', () => {
  const cursor = filterCursor('logs', 10n)!;
  cursor.answered([log(11, 0)], 10n);
  assert.deepEqual(cursor.answered([log(11, 0, true)], 10n), [log(11, 0, true)]);
  assert.deepEqual(cursor.answered([log(11, 0)], 10n), [log(11, 0)]);
  assert.deepEqual(cursor.unsent([log(11, 0, true), log(12, 0)]), [log(12, 0)]);
});

test('blocks: hashes handed over are left out of the replay and of the new filter\'s answers', () => {
  const cursor = filterCursor('blocks', 10n)!;
  assert.deepEqual(cursor.answered([blockHash(11), blockHash(12)], 11n), [blockHash(11), blockHash(12)]);
  assert.equal(cursor.covered, 11n);
  assert.deepEqual(cursor.unsent([blockHash(12), blockHash(13)]), [blockHash(13)]);
  cursor.replayed([blockHash(13)], 13n);
  assert.equal(cursor.covered, 13n);
  assert.deepEqual(cursor.answered([blockHash(13).toUpperCase().replace('0X', '0x'), blockHash(14)], 13n), [blockHash(14)]);
});

test('blocks: only the last 256 hashes are remembered', () => {
  const cursor = filterCursor('blocks', 0n)!;
  cursor.answered(Array.from({ length: 300 }, (_, n) => blockHash(n + 1)), 0n);
  assert.deepEqual(cursor.unsent([blockHash(1), blockHash(44), blockHash(45), blockHash(300)]), [blockHash(1), blockHash(44)]);
});

test('pending-transaction filters keep no cursor: they are made again without a replay', () => {
  assert.equal(filterCursor('pending', 10n), undefined);
});

test('logs: a replay starts REORG_DEPTH blocks below covered, and finds there only what a reorg replaced', () => {
  const depth = Number(REORG_DEPTH);
  const cursor = filterCursor('logs', 10n)!;
  cursor.answered(Array.from({ length: 20 }, (_, n) => log(11 + n, 0)), 30n);
  assert.equal(cursor.replayFrom, BigInt(30 - depth + 1));
  // The new node's logs from there: the last two blocks were replaced while the old node was away.
  const fromNewNode = Array.from({ length: depth }, (_, n) => log(30 - depth + 1 + n, 0, false, n >= depth - 2 ? 'c' : 'b'));
  assert.deepEqual(cursor.unsent(fromNewNode), [log(29, 0, false, 'c'), log(30, 0, false, 'c')]);
});

test('logs: a replay never starts below the filter, nor below blocks it no longer remembers', () => {
  const young = filterCursor('logs', 10n)!;
  young.answered([log(11, 0)], 12n);
  assert.equal(young.replayFrom, 11n);

  // A node whose head evmux does not learn: covered stays, and the blocks handed over pile up.
  const stale = filterCursor('logs', 100n)!;
  const blocks = REMEMBERED_BLOCKS + 5;
  for (let block = 101; block <= 100 + blocks; block++) stale.answered([log(block, 0), log(block, 1)], 100n);
  assert.equal(stale.replayFrom, 106n, 'the five oldest blocks were forgotten');
  assert.deepEqual(stale.unsent([log(105, 0), log(106, 0), log(100 + blocks, 1)]), [log(105, 0)]);
});

test('blocks: a replay starts REORG_DEPTH blocks below covered, never below the filter', () => {
  const cursor = filterCursor('blocks', 10n)!;
  cursor.answered([blockHash(11), blockHash(12)], 12n);
  assert.equal(cursor.replayFrom, 11n);
  cursor.answered(Array.from({ length: 18 }, (_, n) => blockHash(13 + n)), 30n);
  assert.equal(cursor.replayFrom, 30n - REORG_DEPTH + 1n);
});

test('a block filter is made again only on a node at or past the block it was first made at; a logs filter anywhere', () => {
  const blocks = filterCursor('blocks', 20n)!;
  assert.deepEqual([18n, 19n, 20n, 25n].map((head) => blocks.canMoveTo(head)), [false, false, true, true]);
  blocks.answered(['0xaa', '0xbb'], 22n);
  assert.equal(blocks.canMoveTo(20n), true, 'what it covered since is told by hash');
  const logs = filterCursor('logs', 20n)!;
  assert.equal(logs.canMoveTo(3n), true, 'a log carries its block number: those before the filter are told apart');
});

test('a block filter is made again only on a node at or past where its replay starts: a node further behind would report hashes it no longer remembers', () => {
  const blocks = filterCursor('blocks', 2n)!;
  blocks.answered(Array.from({ length: 300 }, (_, n) => blockHash(n + 3)), 302n);
  const lowest = 302n - REORG_DEPTH;
  assert.deepEqual([3n, 45n, lowest - 1n, lowest, 302n].map((head) => blocks.canMoveTo(head)), [false, false, false, true, true]);
  // Made again at `lowest`, the node's filter reports the blocks after it: all handed over, all remembered.
  const reported = Array.from({ length: Number(REORG_DEPTH) }, (_, n) => blockHash(Number(lowest) + 1 + n));
  assert.deepEqual(blocks.unsent(reported), []);
  // Made again further back, it would report blocks whose hashes were forgotten: handed over twice.
  assert.deepEqual(blocks.unsent([blockHash(4)]), [blockHash(4)]);
});
