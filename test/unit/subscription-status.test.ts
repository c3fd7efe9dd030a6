import assert from 'node:assert/strict';
import { test } from 'node:test';

import { subscriptionStatus, type StreamEntry, type TopicEntry } from '../../src/subs/subscription-status.js';

const topic = (filter: string, clients: number, kind: TopicEntry['kind'] = 'logs'): TopicEntry => ({ kind, filter, clients, groups: 1 });
const stream = (key: string, users: number, kind: StreamEntry['kind'] = 'logs'): StreamEntry => ({ kind, key, users, live: true });

test('per kind totals over everything; the topics and streams with the most clients listed, at most the limit, the counts beside them', () => {
  const topics = [topic('a', 1), topic('b', 5), topic('c', 3), topic('heads', 40, 'newHeads')];
  const streams = [stream('a', 1), stream('b', 5), stream('c', 3), stream('heads', 1, 'newHeads')];
  const status = subscriptionStatus('node0', topics, streams, 2);
  assert.deepEqual(status.kinds, { logs: { topics: 3, clients: 9, streams: 3 }, newHeads: { topics: 1, clients: 40, streams: 1 } });
  assert.deepEqual(status.topics.map((entry) => entry.filter), ['heads', 'b']);
  assert.deepEqual(status.streams.map((entry) => entry.key), ['b', 'c']);
  assert.deepEqual([status.topicCount, status.streamCount], [4, 4]);
});

test('under the limit everything is listed as it came', () => {
  const status = subscriptionStatus('node0', [topic('a', 1), topic('b', 5)], [], 100);
  assert.deepEqual(status.topics.map((entry) => entry.filter), ['a', 'b']);
  assert.deepEqual(status.streams, []);
  assert.deepEqual(status.kinds, { logs: { topics: 2, clients: 6, streams: 0 } });
});
