/**
 * Pass-through results around a move: what a topic passed on lately (RecentResults, bounded by age
 * and count), and a group moved to another node's topic not sent again what it was sent on the old
 * one, while the groups already there are not sent again what they were sent there.
 */
import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { pino } from 'pino';
import { noTelemetry } from '../../src/telemetry.js';
import type { Upstream } from '../../src/upstream/upstream.js';
import type { ClientSubscription, Subscriber } from '../../src/subs/group.js';
import type { HeadFeed } from '../../src/subs/head-feed.js';
import { PassthroughTopic } from '../../src/subs/passthrough-topic.js';
import { RECENT_RESULTS_MAX, RECENT_RESULTS_MS, RecentResults } from '../../src/subs/recent-results.js';
import { StreamCalls } from '../../src/subs/stream-calls.js';
import type { StreamRegistry } from '../../src/subs/stream-registry.js';
import { parseSubscription } from '../../src/subs/subscription-params.js';
import type { StreamUser } from '../../src/subs/upstream-stream.js';
import type { TopicDeps } from '../../src/subs/topic.js';
import { WarningThrottle } from '../../src/runtime/warning-throttle.js';

const SPEC = parseSubscription(['newPendingTransactions']);

describe('RecentResults', () => {
  it('gives those passed on in the last RECENT_RESULTS_MS', () => {
    const recent = new RecentResults();
    recent.add('"0x01"', 1000);
    recent.add('"0x02"', 2000);
    recent.add('"0x03"', 2000 + RECENT_RESULTS_MS);
    assert.deepEqual([...recent.since(2000 + RECENT_RESULTS_MS)].sort(), ['"0x02"', '"0x03"']);
  });

  it('keeps at most RECENT_RESULTS_MAX, the latest', () => {
    const recent = new RecentResults();
    for (let index = 0; index < RECENT_RESULTS_MAX + 10; index++) recent.add(`"${index}"`, 0);
    const kept = recent.since(0);
    assert.equal(kept.size, RECENT_RESULTS_MAX);
    assert.ok(!kept.has('"9"') && kept.has('"10"') && kept.has(`"${RECENT_RESULTS_MAX + 9}"`));
  });
});

/** A node's stream: the test hands it results. */
class FakeStream {
  readonly users = new Set<StreamUser>();
  readonly closed = false;
  readonly live = true;
  addUser(user: StreamUser): void {
    this.users.add(user);
  }
  removeUser(user: StreamUser): void {
    this.users.delete(user);
  }
  ready(): Promise<void> {
    return Promise.resolve();
  }
  deliver(hash: string): void {
    for (const user of this.users) user.onResult(hash);
  }
}

/** uWS topics, delivering at once: each client's results, as it got them. */
class Hub {
  readonly #topics = new Map<string, Set<FakeClient>>();
  readonly publish = (topic: string, frame: string): void => {
    for (const client of this.#topics.get(topic) ?? []) client.got.push((JSON.parse(frame) as { params: { result: string } }).params.result);
  };
  join(topic: string, client: FakeClient): void {
    let clients = this.#topics.get(topic);
    if (clients === undefined) this.#topics.set(topic, (clients = new Set()));
    clients.add(client);
  }
  leave(topic: string, client: FakeClient): void {
    this.#topics.get(topic)?.delete(client);
  }
}

class FakeClient implements Subscriber {
  readonly ip = '127.0.0.1';
  readonly closed = false;
  readonly got: string[] = [];
  readonly sessionKey: string;
  readonly #hub: Hub;
  constructor(hub: Hub, sessionKey: string) {
    this.#hub = hub;
    this.sessionKey = sessionKey;
  }
  joinTopic(topic: string): void {
    this.#hub.join(topic, this);
  }
  leaveTopic(topic: string): void {
    this.#hub.leave(topic, this);
  }
  send(): boolean {
    return true;
  }
  checkBackpressure(): boolean {
    return true;
  }
}

/** Two nodes' topics, each on its own stream, publishing to one hub. */
function twoNodes(): { hub: Hub; topics: PassthroughTopic[]; streams: FakeStream[] } {
  const hub = new Hub();
  const streams = [new FakeStream(), new FakeStream()];
  const topics = streams.map((stream, index) => {
    const deps = {
      registry: { get: () => stream } as unknown as StreamRegistry,
      headFeed: () => ({}) as HeadFeed,
      calls: (upstream: Upstream) => new StreamCalls(upstream, { concurrency: 1, timeoutMs: 1000, telemetry: noTelemetry }),
      start: () => {},
      stepsFailing: () => {},
      publish: hub.publish,
      telemetry: noTelemetry,
      logger: pino({ enabled: false }),
      warnings: new WarningThrottle(pino({ enabled: false })),
      replayMaxBlocks: 128,
      replayMaxMs: 10_000,
      historyBlocks: 64,
    } satisfies TopicDeps;
    const topic = new PassthroughTopic({ name: `node${index}` } as Upstream, SPEC, deps);
    topic.attach();
    return topic;
  });
  return { hub, topics, streams };
}

function subscribe(topic: PassthroughTopic, client: FakeClient): ClientSubscription {
  const subscription: ClientSubscription = { id: '0x1', variant: 0, spec: SPEC, subscriber: client, group: undefined, started: false };
  topic.join(subscription);
  topic.start(subscription);
  return subscription;
}

describe('PassthroughTopic moves', () => {
  it('a move back with the old stream overlapping: each group gets each result once, and what it missed', () => {
    const { hub, topics, streams } = twoNodes();
    const [old, back] = topics as [PassthroughTopic, PassthroughTopic];
    const [oldStream, backStream] = streams as [FakeStream, FakeStream];
    const mover = new FakeClient(hub, 'mover');
    const stayer = new FakeClient(hub, 'stayer');
    const moving = subscribe(old, mover);
    subscribe(back, stayer);
    oldStream.deliver('0x01');
    backStream.deliver('0x02');
    back.adopt([moving], {}, old);
    back.overlapWith(old);
    oldStream.deliver('0x02'); // new to the mover; the stayer had it from its own node
    backStream.deliver('0x01'); // the other way round
    oldStream.deliver('0x03');
    backStream.deliver('0x03');
    assert.deepEqual(mover.got, ['0x01', '0x02', '0x03']);
    assert.deepEqual(stayer.got, ['0x02', '0x01', '0x03']);
    back.close();
    old.close();
  });

  it('a failover: what the dead node sent is not sent again for RECENT_RESULTS_MS; after that it is a new announcement', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const { hub, topics, streams } = twoNodes();
      const [dead, next] = topics as [PassthroughTopic, PassthroughTopic];
      const client = new FakeClient(hub, 'client');
      const moving = subscribe(dead, client);
      streams[0]!.deliver('0x01');
      next.adopt([moving], {}, dead);
      dead.close();
      streams[1]!.deliver('0x01');
      streams[1]!.deliver('0x02');
      assert.deepEqual(client.got, ['0x01', '0x02']);
      mock.timers.tick(RECENT_RESULTS_MS);
      streams[1]!.deliver('0x01');
      assert.deepEqual(client.got, ['0x01', '0x02', '0x01']);
      next.close();
    } finally {
      mock.timers.reset();
    }
  });
});
