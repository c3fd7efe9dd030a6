import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isPoolDependent, RecentWriters } from '../../src/router/recent-writers.js';

test('a client is sent to the node it last sent through, until that send is older than the window', () => {
  const writers = new RecentWriters(1_000, 10);
  assert.equal(writers.empty, true);
  writers.note('203.0.113.7', 'node1', 0);
  assert.equal(writers.empty, false);
  assert.equal(writers.nodeOf('203.0.113.7', 999), 'node1');
  assert.equal(writers.nodeOf('198.51.100.1', 999), undefined, 'a client that sent nothing');
  writers.note('203.0.113.7', 'node2', 500);
  assert.equal(writers.nodeOf('203.0.113.7', 1_400), 'node2', 'the last send counts, and renews the window');
  assert.equal(writers.nodeOf('203.0.113.7', 1_500), undefined);
  assert.equal(writers.empty, true, 'forgotten once past the window');
});

test('at most `max` clients are kept, the oldest sender forgotten first, and expired ones go as new ones come', () => {
  const writers = new RecentWriters(1_000, 3);
  for (const [i, client] of ['a', 'b', 'c'].entries()) writers.note(client, 'node0', i);
  writers.note('a', 'node1', 3); // a sent again: now the newest
  writers.note('d', 'node0', 4);
  assert.deepEqual(['a', 'b', 'c', 'd'].map((client) => writers.nodeOf(client, 5)), ['node1', undefined, 'node0', 'node0']);
  writers.note('e', 'node0', 2_000);
  assert.deepEqual(['a', 'c', 'd', 'e'].map((client) => writers.nodeOf(client, 2_000)), [undefined, undefined, undefined, 'node0']);
});

test("calls that depend on a node's pool are told apart from the rest", () => {
  for (const method of ['eth_fillTransaction', 'eth_getTransactionCount', 'eth_getTransactionByHash', 'eth_getTransactionReceipt', 'eth_sendRawTransaction', 'eth_sendTransaction']) {
    assert.equal(isPoolDependent(method), true, method);
  }
  for (const method of ['eth_call', 'eth_getLogs', 'eth_blockNumber', 'eth_getBalance']) assert.equal(isPoolDependent(method), false, method);
});
