import assert from 'node:assert/strict';
import { test } from 'node:test';
import { aliasFilterId } from '../../src/router/filter-id.js';
import { FilterBook, IDLE_MS, MAX_FILTERS, MAX_PARAMS_CHARS, type FilterRecord } from '../../src/router/filter-book.js';
import type { Upstream } from '../../src/upstream/upstream.js';

const node0 = { name: 'node0' } as Upstream;
const node1 = { name: 'node1' } as Upstream;

function record(lastUsed: number, clientIp = '127.0.0.1', paramsJson = '[]', upstream = node0, nodeId = `0x${lastUsed.toString(16)}`): FilterRecord {
  return {
    kind: 'pending',
    method: 'eth_newPendingTransactionFilter',
    paramsJson,
    sessionKey: `ip:${clientIp}`,
    clientIp,
    upstream,
    nodeId,
    lost: false,
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

test('a node that gives a kept filter\'s id to a new filter (it counts from 1 again after a restart): the kept one is lost there, and a taken client id is not given twice', () => {
  const book = new FilterBook();
  const first = record(0, '10.0.0.1', '[]', node0, '0x3');
  const firstId = book.idFor(0, '0x3', 0);
  assert.equal(firstId, '0x1003');
  book.add(firstId, first, 0);

  // It moved to node1; node0, restarted, calls a new filter 0x3.
  book.moved(firstId, first, node1, '0xa');
  const second = record(1, '10.0.0.2', '[]', node0, '0x3');
  const secondId = book.idFor(0, '0x3', 1);
  assert.equal(secondId, aliasFilterId(0, '0x3', 1), 'the moved filter keeps 0x1003');
  book.add(secondId, second, 1);
  assert.equal(book.use(firstId, 2), first);
  assert.equal(book.use(secondId, 2), second);
  assert.equal(first.lost, false, 'the moved filter is on node1: untouched');

  // node1 restarts too and calls a third filter 0xa: the moved one is lost there.
  const third = record(3, '10.0.0.3', '[]', node1, '0xa');
  book.add(book.idFor(1, '0xa', 3), third, 3);
  assert.equal(first.lost, true);
  book.moved(firstId, first, node0, '0x4');
  assert.equal(first.lost, false, 'made again: found');
  assert.equal(book.idFor(0, '0x3', 4), aliasFilterId(0, '0x3', 2), 'each alias once');
});

test('a filter uninstalled while it was being made again does not claim its new node filter', () => {
  const book = new FilterBook();
  const gone = record(0, '10.0.0.1', '[]', node0, '0x1');
  book.add('0x001', gone, 0);
  book.delete('0x001');
  book.moved('0x001', gone, node1, '0x7');
  const fresh = record(1, '10.0.0.2', '[]', node1, '0x7');
  book.add(book.idFor(1, '0x7', 1), fresh, 1);
  assert.equal(fresh.lost, false);
});
