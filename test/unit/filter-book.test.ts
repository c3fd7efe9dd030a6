import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FilterBook, IDLE_MS, MAX_FILTERS, MAX_PARAMS_CHARS, type FilterRecord } from '../../src/router/filter-book.js';
import type { Upstream } from '../../src/upstream/upstream.js';

function record(lastUsed: number, clientIp = '127.0.0.1', paramsJson = '[]'): FilterRecord {
  return {
    kind: 'pending',
    method: 'eth_newPendingTransactionFilter',
    paramsJson,
    sessionKey: `ip:${clientIp}`,
    clientIp,
    upstream: {} as Upstream,
    nodeId: '0x1',
    cursor: undefined,
    lastUsed,
    owed: [],
    turn: Promise.resolve(),
  };
}

test('a filter is found by its id in any case, and forgotten when deleted', () => {
  const book = new FilterBook();
  const entry = record(0);
  book.add('0x01AB', entry, 0);
  assert.equal(book.use('0x01ab', 1), entry);
  assert.equal(entry.lastUsed, 1);
  assert.ok(book.holds('0x01Ab', entry));
  book.delete('0x01AB');
  assert.equal(book.use('0x01ab', 2), undefined);
  assert.equal(book.holds('0x01ab', entry), false);
});

test('a filter not polled for IDLE_MS is forgotten; one polled meanwhile is kept', () => {
  const book = new FilterBook();
  book.add('0x0101', record(0), 0);
  book.add('0x0102', record(0), 0);
  assert.ok(book.use('0x0102', IDLE_MS - 1));
  assert.equal(book.use('0x0101', IDLE_MS), undefined);
  assert.ok(book.use('0x0102', 2 * IDLE_MS - 2));
  assert.equal(book.size, 1);
});

test('past MAX_FILTERS the filter polled least lately is forgotten', () => {
  const book = new FilterBook();
  for (let n = 0; n < MAX_FILTERS; n++) book.add(`0x01${n.toString(16)}`, record(0), 0);
  assert.ok(book.use('0x010', 1));
  book.add('0x02ff', record(1), 1);
  assert.equal(book.size, MAX_FILTERS);
  assert.ok(book.use('0x010', 2), 'polled lately: kept');
  assert.equal(book.use('0x011', 2), undefined, 'polled least lately: forgotten');
});

test('past MAX_PARAMS_CHARS of params the filters polled least lately are forgotten, and their count with them', () => {
  const book = new FilterBook();
  // Filters of 1,000 addresses: 44 KB of params each.
  const params = JSON.stringify([{ address: Array.from({ length: 1000 }, (_, i) => `0x${i.toString(16).padStart(40, '0')}`) }]);
  const fit = Math.floor(MAX_PARAMS_CHARS / params.length);
  for (let n = 0; n < fit; n++) book.add(`0x01${n.toString(16)}`, record(0, '10.0.0.1', params), 0);
  assert.equal(book.size, fit);
  assert.ok(book.use('0x010', 1));
  book.add('0x02ff', record(1, '10.0.0.2', params), 1);
  assert.equal(book.size, fit);
  assert.ok(book.use('0x010', 2), 'polled lately: kept');
  assert.equal(book.use('0x011', 2), undefined, 'polled least lately: forgotten');
  assert.equal(book.countOf('10.0.0.1', 2), fit - 1);
});

test('filters are counted per client address until deleted or expired; an id added again counts once', () => {
  const book = new FilterBook();
  book.add('0x0101', record(0, '10.0.0.1'), 0);
  book.add('0x0102', record(0, '10.0.0.1'), 0);
  book.add('0x0103', record(10, '10.0.0.2'), 10);
  assert.equal(book.countOf('10.0.0.1', 10), 2);
  assert.equal(book.countOf('10.0.0.2', 10), 1);
  assert.equal(book.countOf('10.0.0.3', 10), 0);
  book.delete('0x0101');
  book.delete('0x0101');
  assert.equal(book.countOf('10.0.0.1', 10), 1);
  // 0x0102 was last used at 0, 0x0103 at 10.
  assert.equal(book.countOf('10.0.0.1', IDLE_MS), 0);
  assert.equal(book.countOf('10.0.0.2', IDLE_MS), 1);
  // The same id again (a node may reuse one) replaces the entry, not counted twice.
  book.add('0x0103', record(IDLE_MS, '10.0.0.2'), IDLE_MS);
  assert.equal(book.countOf('10.0.0.2', IDLE_MS), 1);
});
