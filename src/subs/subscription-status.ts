/**
 * What /status shows of one upstream's subscriptions. With thousands of distinct logs filters a full
 * listing was megabytes of JSON built on the event loop (10,000 filters: 3.8 MB, 38 ms a request,
 * stalling every client meanwhile), so by default it lists the topics with the most clients and
 * the streams with the most users, `listLimit` of each, beside totals per kind over all of them.
 */
import type { SubscriptionKind } from './subscription-params.js';

/** Topics and streams listed per upstream unless every one is asked for (`/status?topics=all`). */
export const STATUS_LIST_LIMIT = 100;

export interface TopicEntry {
  kind: SubscriptionKind;
  filter: string;
  clients: number;
  groups: number;
}

export interface StreamEntry {
  kind: SubscriptionKind;
  key: string;
  users: number;
  live: boolean;
}

export interface SubscriptionStatus {
  upstream: string;
  /** per kind, over every topic and stream: topics, their client subscriptions, upstream subscriptions */
  kinds: Partial<Record<SubscriptionKind, { topics: number; clients: number; streams: number }>>;
  /** the topics with the most clients first */
  topics: TopicEntry[];
  /** topics in all; more than listed past the limit */
  topicCount: number;
  /** the upstream subscriptions with the most users first */
  streams: StreamEntry[];
  streamCount: number;
  /** the kinds this node refused lately (answered eth_subscribe with an error): their sessions are on other nodes */
  refused: SubscriptionKind[];
}

export function subscriptionStatus(
  upstream: string,
  topics: readonly TopicEntry[],
  streams: readonly StreamEntry[],
  listLimit: number,
  refused: SubscriptionKind[] = [],
): SubscriptionStatus {
  const kinds: SubscriptionStatus['kinds'] = {};
  const of = (kind: SubscriptionKind): { topics: number; clients: number; streams: number } => (kinds[kind] ??= { topics: 0, clients: 0, streams: 0 });
  for (const topic of topics) {
    const totals = of(topic.kind);
    totals.topics++;
    totals.clients += topic.clients;
  }
  for (const stream of streams) of(stream.kind).streams++;
  return {
    upstream,
    kinds,
    topics: mostFirst(topics, (topic) => topic.clients, listLimit),
    topicCount: topics.length,
    streams: mostFirst(streams, (stream) => stream.users, listLimit),
    streamCount: streams.length,
    refused,
  };
}

function mostFirst<T>(entries: readonly T[], weight: (entry: T) => number, limit: number): T[] {
  if (entries.length <= limit) return [...entries];
  return [...entries].sort((a, b) => weight(b) - weight(a)).slice(0, limit);
}
