import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChainCursor } from '../../src/subs/chain-cursor.js';
import { LogBook, parseLog } from '../../src/subs/log-book.js';
import type { LogEntry } from '../../src/subs/log-book.js';
import { HeadSubscriber } from '../support/head-subscriber.js';
import { hashOf, prng, randomUpstream, sourceOf } from '../support/head-tree.js';
import type { TestHead } from '../support/head-tree.js';

/** A log as a node sends it: hex quantities, removed flag. */
function rawLog(block: { hash: string; number: bigint }, logIndex: number, removed = false): Record<string, unknown> {
  return {
    address: '0x00000000000000000000000000000000000000aa',
    topics: [],
    data: `0x${logIndex.toString(16).padStart(2, '0')}`,
    blockHash: block.hash,
    blockNumber: `0x${block.number.toString(16)}`,
    transactionHash: hashOf(0xfeed_0000 + logIndex),
    transactionIndex: `0x${logIndex.toString(16)}`,
    logIndex: `0x${logIndex.toString(16)}`,
    removed,
  };
}

function entry(block: { hash: string; number: bigint }, logIndex: number): LogEntry {
  return parseLog(rawLog(block, logIndex));
}

const B10 = { hash: hashOf(0x10), number: 10n };
const B11 = { hash: hashOf(0x11), number: 11n };
const B12 = { hash: hashOf(0x12), number: 12n };

function positions(entries: (LogEntry | null)[]): string[] {
  return entries.map((e) => (e === null ? 'null' : `${e.blockNumber}:${e.logIndex}${e.removed ? ' removed' : ''}`));
}

describe('parseLog', () => {
  it('reads the fields the book needs and keeps the raw object', () => {
    const raw = rawLog({ hash: `0x${'AB'.repeat(32)}`, number: 255n }, 17);
    const parsed = parseLog(raw);
    assert.deepEqual(
      { ...parsed, raw: undefined },
      { blockHash: `0x${'ab'.repeat(32)}`, blockNumber: 255n, logIndex: 17, removed: false, raw: undefined },
    );
    assert.equal(parsed.raw, raw);
    assert.equal(parseLog({ ...raw, removed: true }).removed, true);
    const { removed: _omitted, ...withoutRemoved } = raw;
    assert.equal(parseLog(withoutRemoved).removed, false);
  });

  it('names the bad field', () => {
    const good = rawLog(B10, 0);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...good, blockHash: null }, /blockHash .*got null/],
      [{ ...good, blockHash: '0x1234' }, /blockHash/],
      [{ ...good, blockNumber: 10 }, /blockNumber .*got 10/],
      [{ ...good, blockNumber: 'ten' }, /blockNumber/],
      [{ ...good, logIndex: undefined }, /logIndex .*got nothing/],
      [{ ...good, logIndex: '0x' }, /logIndex/],
      [{ ...good, logIndex: `0x${'f'.repeat(20)}` }, /logIndex/],
      [{ ...good, removed: 'false' }, /removed must be a boolean/],
    ];
    for (const [raw, message] of cases) assert.throws(() => parseLog(raw), message);
  });
});

describe('LogBook', () => {
  it('delivers a log once and drops duplicates', () => {
    const book = new LogBook();
    const first = entry(B10, 0);
    assert.equal(book.accept(first), first);
    assert.ok(book.isLive(B10.hash, 0));
    assert.equal(book.accept(entry(B10, 0)), null);
    assert.ok(!book.isLive(B10.hash, 1));
    assert.deepEqual(positions([book.accept(entry(B10, 1)), book.accept(entry(B10, 1))]), ['10:1', 'null']);
  });

  it('marks a removal\'s raw log removed without touching the log it was sent as', () => {
    const book = new LogBook();
    const raw = rawLog(B10, 0, false);
    book.accept(parseLog(raw));
    const [removal] = book.orphan([B10.hash]);
    assert.equal(removal?.raw['removed'], true);
    assert.equal(raw['removed'], false, 'the caller\'s object is not mutated');
    assert.ok(!book.isLive(B10.hash, 0));
  });

  it('orphans blocks into removals ordered by block then log index', () => {
    const book = new LogBook();
    for (const [block, index] of [[B12, 1], [B10, 2], [B12, 0], [B11, 0], [B10, 0], [B10, 1]] as const) {
      book.accept(entry(block, index));
    }
    const removed = book.orphan([B12.hash, B10.hash, hashOf(0x99), B12.hash]);
    assert.deepEqual(positions(removed), ['10:0 removed', '10:1 removed', '10:2 removed', '12:0 removed', '12:1 removed']);
    for (const r of removed) {
      assert.equal(r.raw['removed'], true);
      assert.equal(r.raw['blockHash'], r.blockHash);
    }
    assert.ok(!book.isLive(B12.hash, 0));
    assert.ok(book.isLive(B11.hash, 0));
    assert.deepEqual(book.orphan([B12.hash, B10.hash]), [], 'nothing is removed twice');
  });

  it('delivers the logs of a block again when it comes back to the canonical chain', () => {
    const book = new LogBook();
    book.accept(entry(B11, 0));
    book.accept(entry(B11, 1));
    assert.equal(book.orphan([B11.hash]).length, 2);
    assert.deepEqual(positions([book.accept(entry(B11, 1)), book.accept(entry(B11, 1))]), ['11:1', 'null']);
    assert.ok(book.isLive(B11.hash, 1));
    assert.ok(!book.isLive(B11.hash, 0));
    assert.deepEqual(positions(book.orphan([B11.hash])), ['11:1 removed']);
  });

  it('tracks the highest block with a live log', () => {
    const book = new LogBook();
    assert.equal(book.lastBlockNumber, undefined);
    book.accept(entry(B10, 0));
    book.accept(entry(B12, 0));
    assert.equal(book.lastBlockNumber, 12n);
    book.orphan([B12.hash]);
    assert.equal(book.lastBlockNumber, 10n);
    book.orphan([B10.hash]);
    assert.equal(book.lastBlockNumber, undefined);
  });

  it('forgets the lowest blocks beyond its capacity', () => {
    const book = new LogBook({ capacityBlocks: 3 });
    const [b5, b1, b6, b7, b8] = [5n, 1n, 6n, 7n, 8n].map((number) => ({ hash: hashOf(0x100 + Number(number)), number }));
    assert.ok(b5 && b1 && b6 && b7 && b8);
    for (const block of [b5, b1, b6, b7]) book.accept(entry(block, 0));
    assert.equal(book.size, 3);
    assert.ok(!book.isLive(b1.hash, 0), 'lowest number goes first, not first inserted');
    assert.ok(book.isLive(b5.hash, 0));
    book.accept(entry(b8, 0));
    assert.equal(book.size, 3);
    assert.ok(!book.isLive(b5.hash, 0));
    assert.ok(book.isLive(b6.hash, 0) && book.isLive(b7.hash, 0) && book.isLive(b8.hash, 0));
    assert.deepEqual(book.orphan([b5.hash]), [], 'a removal for a forgotten block is dropped');
    assert.deepEqual(book.orphan([b1.hash]), []);
    assert.deepEqual(positions([book.accept(entry(b1, 0))]), ['1:0'], 'a forgotten log is delivered again');
  });

  it('forgets an orphaned block before a live one, so a window with reorgs in it holds as many live blocks', () => {
    const book = new LogBook({ capacityBlocks: 3 });
    const [a5, b5, b6, b7] = [[5n, 0xa5], [5n, 0xb5], [6n, 0xb6], [7n, 0xb7]].map(([number, tag]) => ({ hash: hashOf(Number(tag)), number: BigInt(number!) }));
    const a4 = { hash: hashOf(0xa4), number: 4n };
    assert.ok(a5 && b5 && b6 && b7);
    book.accept(entry(a4, 0));
    book.accept(entry(a5, 0));
    assert.deepEqual(positions(book.orphan([a5.hash])), ['5:0 removed']);
    book.accept(entry(b5, 0));
    book.accept(entry(b6, 0)); // full: a5, orphaned, goes rather than a4
    assert.ok(book.isLive(a4.hash, 0), 'the live block 4 is kept');
    assert.deepEqual(positions(book.orphan([a4.hash])), ['4:0 removed'], 'a reorg down to block 4 still removes its log');
    book.accept(entry(b7, 0)); // nothing orphaned left but a4: the lowest goes
    assert.ok(book.isLive(b5.hash, 0) && book.isLive(b6.hash, 0) && book.isLive(b7.hash, 0));
  });

  it('clones into an independent book', () => {
    const book = new LogBook();
    book.accept(entry(B10, 0));
    const copy = book.clone();
    book.orphan([B10.hash]);
    assert.ok(copy.isLive(B10.hash, 0));
    assert.equal(copy.accept(entry(B10, 0)), null);
    copy.accept(entry(B11, 0));
    assert.ok(!book.isLive(B11.hash, 0));
  });

  it('numbers what it sends live, also a log sent again after its removal', () => {
    const book = new LogBook();
    assert.equal(book.seq, 0);
    book.accept(entry(B10, 0));
    book.accept(entry(B10, 1));
    book.accept(entry(B10, 1));
    assert.deepEqual([book.seq, book.liveCount, book.sentSeq(B10.hash, 0), book.sentSeq(B10.hash, 1)], [2, 2, 1, 2]);
    book.orphan([B10.hash]);
    assert.deepEqual([book.seq, book.liveCount, book.sentSeq(B10.hash, 1)], [2, 0, 2], 'a removal keeps when the log was sent');
    book.accept(entry(B10, 1));
    assert.deepEqual([book.seq, book.liveCount, book.sentSeq(B10.hash, 1)], [3, 1, 3]);
    book.orphan([B10.hash]);
    assert.equal(book.liveCount, 0);
    assert.equal(book.sentSeq(B11.hash, 0), undefined);
    const copy = book.clone();
    assert.deepEqual([copy.seq, copy.sentSeq(B10.hash, 1)], [3, 3], 'a clone keeps the numbering');
  });

  it('forgets the blocks below a number', () => {
    const book = new LogBook();
    for (const block of [B10, B11, B12]) book.accept(entry(block, 0));
    book.orphan([B12.hash]);
    book.forgetBelow(11n);
    assert.deepEqual([book.size, book.liveCount], [2, 1]);
    assert.ok(!book.isLive(B10.hash, 0) && book.isLive(B11.hash, 0));
  });

  it('restates a start in another book when what it was sent is a tail of this book', () => {
    const main = new LogBook();
    for (const block of [B10, B11, B12]) for (const index of [0, 1]) main.accept(entry(block, index)); // seq 1..6
    const moved = new LogBook();
    for (const block of [B11, B12]) for (const index of [0, 1]) moved.accept(entry(block, index)); // seq 1..4
    assert.equal(main.restate(moved, 0), 2, 'sent 11 and 12: everything above seq 2 here');
    assert.equal(main.restate(moved, 2), 4, 'started after 11: sent only 12');
    assert.equal(main.restate(moved, 4), 6, 'sent nothing still live: only what comes from now on');
    assert.equal(moved.restate(main, 0), undefined, 'sent 10, which the other book never sent');
    assert.equal(moved.restate(main, 2), 0);
    const holed = new LogBook();
    for (const [block, index] of [[B10, 0], [B10, 1], [B11, 0], [B12, 0], [B12, 1]] as const) holed.accept(entry(block, index));
    assert.equal(main.restate(holed, 0), undefined, 'lacks 11#1');
    assert.equal(holed.restate(main, 0), undefined, 'has 11#1 which the other lacks');
    assert.equal(main.restate(holed, 3), 4, 'the hole is before its start');
    main.orphan([B12.hash]);
    assert.equal(main.restate(moved, 2), undefined, 'what it was sent is no longer live here');
  });

  it('validates its options', () => {
    assert.throws(() => new LogBook({ capacityBlocks: 0 }), RangeError);
  });
});

/** 0..3 logs per block, fixed by its hash. */
function logsOf(head: TestHead): Record<string, unknown>[] {
  const count = Number(BigInt(head.hash) % 4n);
  return Array.from({ length: count }, (_, i) => rawLog(head, i));
}

describe('LogBook with ChainCursor: randomized streams', () => {
  it('delivers each canonical log once and removes exactly the orphaned ones', async () => {
    for (let seed = 1; seed <= 40; seed++) {
      const rnd = prng(seed * 7919);
      const { tree, notifications, tip } = randomUpstream(seed, { steps: 200 });
      const source = sourceOf(tree);
      const cursor = new ChainCursor<TestHead>();
      const book = new LogBook();
      const heads = new HeadSubscriber();
      const clientLive = new Set<string>();
      const key = (e: LogEntry): string => `${e.blockHash}/${e.logIndex}`;
      const deliver = (out: LogEntry | null, context: string): void => {
        if (out === null) return;
        const k = key(out);
        if (out.removed) assert.ok(clientLive.delete(k), `${context}: removal of ${k} that is not live`);
        else assert.ok(!clientLive.has(k), `${context}: ${k} delivered twice`);
        if (!out.removed) clientLive.add(k);
      };

      for (const { head, note } of notifications) {
        const context = `seed ${seed} ${note}`;
        const result = await cursor.advance(head, source, { deadline: Number.MAX_SAFE_INTEGER });
        heads.apply(head, result, context);
        assert.equal(result.truncated, false);

        const removals = book.orphan(result.orphaned.map((h) => h.hash));
        const order = removals.map((r) => [r.blockNumber, r.logIndex] as const);
        const sorted = [...order].sort(([n1, i1], [n2, i2]) => (n1 === n2 ? i1 - i2 : n1 < n2 ? -1 : 1));
        assert.deepEqual(order, sorted, `${context}: removals in block, index order`);
        for (const r of removals) deliver(r, context);
        for (const block of result.deliver) {
          for (const raw of logsOf(block)) {
            deliver(book.accept(parseLog(raw)), context);
            if (rnd.chance(0.2)) assert.equal(book.accept(parseLog(raw)), null, `${context}: duplicate`);
          }
        }
        // Overlapping replay after a failover: recent blocks' logs arrive again.
        const recent = heads.chain.slice(heads.chain.length - rnd.int(0, 4));
        for (const block of recent) {
          for (const raw of logsOf(block)) assert.equal(book.accept(parseLog(raw)), null, `${context}: replay`);
        }
      }

      const canonical = new Set(heads.chain.flatMap((h) => logsOf(h).map((raw) => key(parseLog(raw)))));
      assert.deepEqual(clientLive, canonical, `seed ${seed}: live logs are exactly those of the canonical chain`);
      assert.equal(heads.chain.at(-1), tip);
    }
  });
});

describe('LogBook.startAt', () => {
  it('sends the start block\'s logs until a later block is delivered, then drops them, also in a clone', () => {
    const book = new LogBook();
    book.startAt(B10.hash, B10.number);
    assert.ok(book.isStart(B10.hash) && !book.isStart(B11.hash));
    assert.deepEqual(positions([book.accept(entry(B10, 0))]), ['10:0'], 'mined as the client subscribed: sent');
    book.sealStart();
    assert.deepEqual(positions([book.accept(entry(B11, 0)), book.accept(entry(B10, 1))]), ['11:0', 'null']);
    const moved = book.clone();
    assert.ok(moved.isStart(B10.hash), 'sealed, still the start block');
    assert.deepEqual(positions([moved.accept(entry(B10, 2)), moved.accept(entry(B12, 0))]), ['null', '12:0']);
    assert.deepEqual(positions(moved.orphan([B10.hash])), ['10:0 removed'], 'what was sent of it can still be removed');
  });

  it('carries an unsealed start into a clone, which seals it', () => {
    const book = new LogBook();
    book.startAt(B10.hash, B10.number);
    const moved = book.clone();
    moved.sealStart();
    assert.equal(moved.accept(entry(B10, 0)), null);
    assert.deepEqual(positions([book.accept(entry(B10, 0))]), ['10:0'], 'the original is not sealed');
  });
});

describe('LogBook.liveSince', () => {
  it('gives the logs sent after a sequence number and still live, in the order they were sent', () => {
    const book = new LogBook();
    book.accept(entry(B10, 0));
    const joined = book.seq;
    book.accept(entry(B11, 1));
    book.accept(entry(B11, 0));
    book.accept(entry(B12, 0));
    book.orphan([B12.hash]);
    assert.deepEqual(positions(book.liveSince(joined)), ['11:1', '11:0']);
    assert.deepEqual(positions(book.liveSince(0)), ['10:0', '11:1', '11:0']);
    assert.deepEqual(book.liveSince(book.seq), []);
    // Sent again after its removal: it goes out at its new place.
    book.accept(entry(B12, 0));
    assert.deepEqual(positions(book.liveSince(joined)), ['11:1', '11:0', '12:0']);
  });
});
