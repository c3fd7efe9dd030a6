/**
 * LogsTopic groups on synthetic chains: a subscription that starts after its group delivered logs
 * gets removed:true only for logs it was sent, while earlier ones get all theirs; a group moved in
 * by failover merges back into the main group once both histories agree. Clients are modelled the
 * way uWS and the adapter treat them: published frames wait per connection until drained (before a
 * direct frame goes out, or at the end of a step) and are dropped if the connection is left with no
 * topic; direct frames wait in an outbox flushed on every topic change.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { noTelemetry } from '../../src/telemetry.js';
import { toTrackedHead } from '../../src/upstream/head.js';
import type { Upstream } from '../../src/upstream/upstream.js';
import { Group, type ClientSubscription, type Subscriber } from '../../src/subs/group.js';
import type { HeadFeed } from '../../src/subs/head-feed.js';
import { LogsTopic } from '../../src/subs/logs-topic.js';
import { StreamCalls } from '../../src/subs/stream-calls.js';
import type { StreamRegistry } from '../../src/subs/stream-registry.js';
import { subscriptionId } from '../../src/subs/subscription-id.js';
import { parseSubscription } from '../../src/subs/subscription-params.js';
import type { Topic, TopicDeps } from '../../src/subs/topic.js';
import { WarningThrottle } from '../../src/runtime/warning-throttle.js';
import { SyntheticChain, toQuantity, type FakeHeader } from '../support/synthetic-chain.js';
import type { Hex } from '../support/synthetic-logs.js';
import { logProblems, toLog, waitUntil, type LogNote } from '../support/stream-recorder.js';

const EMITTER: Hex = '0x00000000000000000000000000000000000000aa';
const TOPIC0: Hex = `0x${'11'.repeat(32)}`;
const SPEC = parseSubscription(['logs', { address: EMITTER }]);

/** uWS topics and per-connection queues, as far as ordering and loss go. */
class Hub {
  readonly #topics = new Map<string, Set<FakeClient>>();
  readonly clients: FakeClient[] = [];
  publishes = 0;

  readonly publish = (topic: string, frame: string): void => {
    this.publishes++;
    for (const client of this.#topics.get(topic) ?? []) client.pending.push(frame);
  };

  subscribe(topic: string, client: FakeClient): void {
    let set = this.#topics.get(topic);
    if (set === undefined) this.#topics.set(topic, (set = new Set()));
    set.add(client);
  }

  unsubscribe(topic: string, client: FakeClient): void {
    this.#topics.get(topic)?.delete(client);
  }

  /** The end of an event loop turn: every queue drains. */
  drainAll(): void {
    for (const client of this.clients) client.drain();
  }
}

class FakeClient implements Subscriber {
  readonly sessionKey: string;
  readonly ip = '127.0.0.1';
  closed = false;
  readonly topics = new Set<string>();
  /** published frames uWS still holds for this connection */
  pending: string[] = [];
  /** the adapter's outbox of direct frames */
  outbox: string[] = [];
  /** frames as the client received them */
  readonly frames: string[] = [];
  readonly #hub: Hub;

  constructor(hub: Hub, label: string) {
    this.sessionKey = label;
    this.#hub = hub;
    hub.clients.push(this);
  }

  joinTopic(topic: string): void {
    this.flush();
    this.topics.add(topic);
    this.#hub.subscribe(topic, this);
  }

  leaveTopic(topic: string): void {
    this.flush();
    this.topics.delete(topic);
    this.#hub.unsubscribe(topic, this);
    // uWS frees a subscriber left without topics, and what was queued for it with it.
    if (this.topics.size === 0) this.pending = [];
  }

  send(text: string): boolean {
    this.outbox.push(text);
    return true;
  }

  checkBackpressure(): boolean {
    return true;
  }

  /** The adapter's flush: direct frames go out, and uWS drains published ones before them. */
  flush(): void {
    if (this.outbox.length === 0) return;
    this.drain();
  }

  /** The end of an event loop turn. */
  drain(): void {
    this.frames.push(...this.pending, ...this.outbox);
    this.pending = [];
    this.outbox = [];
  }

  /** Logs received under subscription `id`; fails on any frame under another id. */
  logs(id: string): LogNote[] {
    return this.frames.map((frame) => {
      const message = JSON.parse(frame) as { params: { subscription: string; result: Record<string, unknown> } };
      assert.equal(message.params.subscription, id, `${this.sessionKey}: a frame under a foreign id`);
      return toLog(message.params.result);
    });
  }
}

/** An upstream answering from a synthetic chain (`chain`: the node may switch to another one); `failLogs` makes eth_getLogs fail. */
function fakeUpstream(initial: SyntheticChain, name: string): Upstream & { failLogs: boolean; chain: SyntheticChain } {
  const upstream = {
    name,
    failLogs: false,
    chain: initial,
    call(method: string, params: unknown[]): Promise<unknown> {
      const chain = upstream.chain;
      const block = (header: FakeHeader | undefined): Record<string, unknown> | null => (header === undefined ? null : chain.blockJson(header));
      switch (method) {
        case 'eth_getBlockByNumber': {
          const tag = params[0] as string;
          return Promise.resolve(block(tag === 'latest' ? chain.head : chain.header(BigInt(tag))));
        }
        case 'eth_getBlockByHash':
          return Promise.resolve(block(chain.headerByHash(params[0] as string)?.header));
        case 'eth_getLogs': {
          if (upstream.failLogs) return Promise.reject(new Error('eth_getLogs failed'));
          const logs = chain.getLogs(params[0] as Parameters<SyntheticChain['getLogs']>[0]);
          return typeof logs === 'string' ? Promise.reject(new Error(logs)) : Promise.resolve(logs);
        }
        default:
          return Promise.reject(new Error(`unexpected ${method}`));
      }
    },
  };
  return upstream as unknown as Upstream & { failLogs: boolean; chain: SyntheticChain };
}

const idleStream = { addUser() {}, removeUser() {}, ready: () => Promise.resolve() };

/** A topic on `chain`; heads and live logs are fed by the test. */
function logsTopic(hub: Hub, chain: SyntheticChain, name: string, topics: Topic[], historyBlocks = 64, stepsFailing: TopicDeps['stepsFailing'] = () => {}): LogsTopic {
  const deps: TopicDeps = {
    registry: { get: () => idleStream } as unknown as StreamRegistry,
    headFeed: () => ({ add() {}, remove() {}, ready: () => Promise.resolve() }) as unknown as HeadFeed,
    start: (subscription) => topics.find((topic) => subscription.group !== undefined && topic.groups.has(subscription.group))?.start(subscription),
    stepsFailing,
    publish: hub.publish,
    telemetry: noTelemetry,
    logger: pino({ enabled: false }),
    warnings: new WarningThrottle(pino({ enabled: false })),
    calls: (upstream) => new StreamCalls(upstream, { concurrency: 4, timeoutMs: 1000, telemetry: noTelemetry }),
    replayMaxBlocks: 128,
    replayMaxMs: 10_000,
    historyBlocks,
  };
  const topic = new LogsTopic(fakeUpstream(chain, name), SPEC, deps);
  topic.attach();
  topics.push(topic);
  return topic;
}

async function subscribe(topic: LogsTopic, client: FakeClient, variant = 0): Promise<ClientSubscription> {
  const subscription: ClientSubscription = { id: subscriptionId(SPEC.fingerprint, variant), variant, spec: SPEC, subscriber: client, group: undefined, started: false };
  topic.join(subscription);
  topic.start(subscription);
  await topic.settled();
  return subscription;
}

let logCounter = 0;

/** Two emitter logs (and one from another contract) in the canonical block at `number`. */
function addLogs(chain: SyntheticChain, number?: bigint): void {
  for (let i = 0; i < 2; i++) chain.addLog({ address: EMITTER, topics: [TOPIC0], data: toQuantity(++logCounter) }, number);
  chain.addLog({ address: '0x00000000000000000000000000000000000000bb', data: '0x00' }, number);
}

/** Reorg `depth` blocks; the new branch's blocks carry logs too. */
function reorgWithLogs(chain: SyntheticChain, depth: number): ReturnType<SyntheticChain['reorg']> {
  const branch = chain.reorg(depth);
  for (const header of branch.added) addLogs(chain, header.number);
  return branch;
}

const trackedHead = (chain: SyntheticChain, header: FakeHeader) => toTrackedHead(chain.headerJson(header));

/**
 * Feed blocks to topics as a node would: the logs subscription (emitter logs only) before or after
 * the newHeads notification, or not at all (the topic then asks eth_getLogs).
 */
async function feed(hub: Hub, entries: Array<{ chain: SyntheticChain; topic: LogsTopic }>, headers: FakeHeader[], live: 'before' | 'after' | 'none'): Promise<void> {
  for (const header of headers) {
    for (const { chain, topic } of entries) {
      const logs = chain.logsOf(header).filter((log) => log.address === EMITTER);
      if (live === 'before') for (const log of logs) topic.onResult(log);
      topic.onHead(trackedHead(chain, header));
      if (live === 'after') for (const log of logs) topic.onResult(log);
      await topic.settled();
    }
    hub.drainAll();
  }
}

/** Mine `count` blocks (with logs unless told) on every chain (identical chains stay identical). */
function mine(chains: SyntheticChain[], count: number, withLogs = true): FakeHeader[] {
  let headers: FakeHeader[] = [];
  for (let i = 0; i < count; i++) {
    if (withLogs) for (const chain of chains) addLogs(chain);
    for (const [index, chain] of chains.entries()) {
      const added = chain.advance(1);
      if (index === 0) headers = [...headers, ...added];
    }
  }
  return headers;
}

/** The canonical emitter logs from `from` to the head, and the canonical block hashes. */
function canonical(chain: SyntheticChain, from: bigint): { logs: LogNote[]; hashes: Set<string>; to: bigint } {
  const to = chain.height;
  const logs = chain.getLogs({ fromBlock: toQuantity(from), toBlock: toQuantity(to), address: EMITTER });
  assert.ok(Array.isArray(logs));
  const hashes = new Set<string>();
  for (let n = 0n; n <= to; n++) hashes.add(chain.header(n)!.hash);
  return { logs: logs.map((log) => toLog(log as unknown as Record<string, unknown>)), hashes, to };
}

const key = (log: LogNote): string => `${log.blockHash}#${log.logIndex}`;

function liveKeys(logs: LogNote[]): Set<string> {
  return new Set(logs.filter((log) => !log.removed).map(key));
}

describe('Group.publishRemovals', () => {
  it('sends each removal only to members started before the log was sent, in order with everything else', () => {
    const hub = new Hub();
    const group = new Group(SPEC.fingerprint, hub.publish);
    const early = new FakeClient(hub, 'early');
    const late = new FakeClient(hub, 'late');
    const later = new FakeClient(hub, 'later');
    const member = (subscriber: FakeClient, since: number): ClientSubscription => {
      const subscription: ClientSubscription = { id: subscriptionId(SPEC.fingerprint, 0), variant: 0, spec: SPEC, subscriber, group: undefined, started: true, since };
      group.add(subscription);
      return subscription;
    };
    const subscriptions = [member(early, 0), member(late, 5), member(later, 8)];
    group.publish('{"n":1}'); // still queued for every connection when the removals come
    group.publishRemovals([{ json: '{"r":3}', sentSeq: 3 }, { json: '{"r":7}', sentSeq: 7 }, { json: '{"r":9}', sentSeq: 9 }]);
    group.publish('{"n":2}');
    hub.drainAll();
    const results = (client: FakeClient): string[] => client.frames.map((frame) => JSON.stringify((JSON.parse(frame) as { params: { result: unknown } }).params.result));
    assert.deepEqual(results(early), ['{"n":1}', '{"r":3}', '{"r":7}', '{"r":9}', '{"n":2}']);
    assert.deepEqual(results(late), ['{"n":1}', '{"r":7}', '{"r":9}', '{"n":2}']);
    assert.deepEqual(results(later), ['{"n":1}', '{"r":9}', '{"n":2}']);
    for (const client of [early, late, later]) assert.deepEqual([...client.topics], [group.topicName(0)], `${client.sessionKey} is back in the group topic only`);
    assert.ok(subscriptions.every((subscription) => subscription.group === group));
  });

  it('is one publish per removal when every member was sent the logs', () => {
    const hub = new Hub();
    const group = new Group(SPEC.fingerprint, hub.publish);
    const client = new FakeClient(hub, 'only');
    group.add({ id: subscriptionId(SPEC.fingerprint, 0), variant: 0, spec: SPEC, subscriber: client, group: undefined, started: true });
    group.publishRemovals([{ json: '{"r":1}', sentSeq: 1 }, { json: '{"r":2}', sentSeq: 2 }]);
    assert.equal(hub.publishes, 2);
    assert.equal(client.outbox.length, 0);
  });
});

describe('LogsTopic: a subscription that starts after its group delivered logs', () => {
  for (const after of [1, 2]) {
    for (const depth of [1, 2, 3]) {
      for (const live of ['before', 'after', 'none'] as const) {
        it(`gets removals only for logs it was sent (${after} block(s) after its start, reorg depth ${depth}, live logs ${live})`, async () => {
          const hub = new Hub();
          const chain = new SyntheticChain({ seed: `late-${after}-${depth}-${live}`, startHeight: 100 });
          const topics: Topic[] = [];
          const topic = logsTopic(hub, chain, 'u0', topics);
          const early = new FakeClient(hub, 'early');
          const late = new FakeClient(hub, 'late');
          const a = await subscribe(topic, early);
          await feed(hub, [{ chain, topic }], mine([chain], 3), live); // 101..103: early only
          const b = await subscribe(topic, late);
          const lateFrom = chain.height + 1n;
          await feed(hub, [{ chain, topic }], mine([chain], after), live);
          const aBefore = early.logs(a.id);
          const bBefore = late.logs(b.id);
          assert.equal(bBefore.length, 2 * after, 'the late client got only logs of blocks after its start');

          // Reorg: the node retracts the orphaned logs (when it streams logs), then sends the new branch.
          const { removed, added } = reorgWithLogs(chain, depth);
          if (live !== 'none') {
            for (const header of removed) for (const log of chain.logsOf(header, true)) if (log.address === EMITTER) topic.onResult(log);
          }
          await feed(hub, [{ chain, topic }], added, live);
          await feed(hub, [{ chain, topic }], mine([chain], 2), live);

          const orphanedKeys = new Set(removed.flatMap((header) => chain.logsOf(header).filter((log) => log.address === EMITTER)).map((log) => key(toLog(log as unknown as Record<string, unknown>))));
          const aLogs = early.logs(a.id);
          const bLogs = late.logs(b.id);
          const aRemoved = aLogs.filter((log) => log.removed).map(key);
          const bRemoved = bLogs.filter((log) => log.removed).map(key);
          assert.deepEqual(new Set(aRemoved), new Set([...orphanedKeys].filter((k) => liveKeys(aBefore).has(k))), 'the early client gets every removal it is due');
          assert.equal(aRemoved.length, new Set(aRemoved).size, 'no removal twice');
          assert.deepEqual(new Set(bRemoved), new Set([...orphanedKeys].filter((k) => liveKeys(bBefore).has(k))), 'the late client gets removals only for logs it was sent');
          assert.equal(bRemoved.length, new Set(bRemoved).size, 'no removal twice');

          const newBranch = added.flatMap((header) => chain.logsOf(header).filter((log) => log.address === EMITTER)).map((log) => key(toLog(log as unknown as Record<string, unknown>)));
          for (const k of newBranch) {
            assert.equal(aLogs.filter((log) => !log.removed && key(log) === k).length, 1, `early: new-branch log ${k} once`);
            assert.equal(bLogs.filter((log) => !log.removed && key(log) === k).length, 1, `late: new-branch log ${k} once`);
          }
          const reference = canonical(chain, 101n);
          assert.deepEqual(logProblems(aLogs, reference.logs, reference.hashes, 101n, reference.to), []);
          assert.deepEqual(logProblems(bLogs, reference.logs, reference.hashes, lateFrom, reference.to), []);
          assert.equal(topic.groups.size, 1, 'one group all along');
        });
      }
    }
  }

  it('costs one publish per notification, and the late client gets no removal of the logs before its start', async () => {
    const hub = new Hub();
    const chain = new SyntheticChain({ seed: 'publishes', startHeight: 100 });
    const topic = logsTopic(hub, chain, 'u0', []);
    const clients = Array.from({ length: 5 }, (_, i) => new FakeClient(hub, `c${i}`));
    const subscriptions: ClientSubscription[] = [];
    for (const client of clients) {
      subscriptions.push(await subscribe(topic, client));
      await feed(hub, [{ chain, topic }], mine([chain], 1), 'before');
    }
    const before = hub.publishes;
    await feed(hub, [{ chain, topic }], mine([chain], 3), 'before');
    assert.equal(hub.publishes - before, 6, 'two logs a block, one publish each');
    assert.equal(topic.groups.size, 1);
    // Depth 5 orphans every block since the first client's start but one.
    const { added } = reorgWithLogs(chain, 5);
    await feed(hub, [{ chain, topic }], added, 'none');
    const reference = canonical(chain, 101n);
    for (const [i, client] of clients.entries()) {
      const logs = client.logs(subscriptions[i]!.id);
      assert.deepEqual(logProblems(logs, reference.logs, reference.hashes, 102n + BigInt(i), reference.to), [], client.sessionKey);
    }
  });

  it('routes by subscription, not by connection: one connection, an early and a late variant', async () => {
    const hub = new Hub();
    const chain = new SyntheticChain({ seed: 'variants', startHeight: 100 });
    const topic = logsTopic(hub, chain, 'u0', []);
    const client = new FakeClient(hub, 'both');
    const first = await subscribe(topic, client, 0);
    await feed(hub, [{ chain, topic }], mine([chain], 2), 'before');
    const second = await subscribe(topic, client, 1);
    await feed(hub, [{ chain, topic }], mine([chain], 1), 'before');
    const { added } = chain.reorg(2);
    await feed(hub, [{ chain, topic }], added, 'after');
    const split = (id: string): LogNote[] =>
      client.frames
        .map((frame) => JSON.parse(frame) as { params: { subscription: string; result: Record<string, unknown> } })
        .filter((message) => message.params.subscription === id)
        .map((message) => toLog(message.params.result));
    assert.equal(split(first.id).filter((log) => log.removed).length, 4, 'the first was sent blocks 102 and 103');
    assert.equal(split(second.id).filter((log) => log.removed).length, 2, 'the second only block 103');
    const reference = canonical(chain, 101n);
    assert.deepEqual(logProblems(split(first.id), reference.logs, reference.hashes, 101n, reference.to), []);
    assert.deepEqual(logProblems(split(second.id), reference.logs, reference.hashes, 103n, reference.to), []);
  });
});

describe('LogsTopic: a group moved in by failover', () => {
  /**
   * Two nodes of one chain, a client on each, both from block 101; the mover's subscription fails
   * over to the stayer's node after block 105. With `dropOn0` the mover's node never streamed the
   * second log of block 102 (its live logs of a block are taken as complete), so its history lacks
   * one log in the middle of the window.
   */
  async function failover(options: { historyBlocks?: number; dropOn0?: boolean; moverLate?: boolean } = {}) {
    const hub = new Hub();
    const chains = [new SyntheticChain({ seed: 'failover', startHeight: 100 }), new SyntheticChain({ seed: 'failover', startHeight: 100 })];
    const [c0, c1] = chains as [SyntheticChain, SyntheticChain];
    const topics: Topic[] = [];
    const t0 = logsTopic(hub, c0, 'u0', topics, options.historyBlocks);
    const t1 = logsTopic(hub, c1, 'u1', topics, options.historyBlocks);
    const moverClient = new FakeClient(hub, 'mover');
    const stayerClient = new FakeClient(hub, 'stayer');
    const stayer = await subscribe(t1, stayerClient);
    let mover = options.moverLate === true ? undefined : await subscribe(t0, moverClient);
    for (let i = 0; i < 5; i++) {
      if (c0.height === 103n && mover === undefined) mover = await subscribe(t0, moverClient);
      const [header] = mine(chains, 1) as [FakeHeader];
      for (const [chain, topic] of [[c0, t0], [c1, t1]] as const) {
        let logs = chain.logsOf(header).filter((log) => log.address === EMITTER);
        if (topic === t0 && options.dropOn0 === true && header.number === 102n) logs = logs.slice(0, 1);
        for (const log of logs) topic.onResult(log);
        topic.onHead(trackedHead(chain, header));
        await topic.settled();
      }
      hub.drainAll();
    }
    assert.ok(mover !== undefined);
    // What the subscription manager does on failover (src/subs/subscription-manager.ts rebalance).
    const group = mover.group!;
    t1.adopt([mover], { cursor: group.cursor!.clone(), logBook: group.logBook!.clone() });
    t0.dropEmptyGroups();
    await t1.settled();
    hub.drainAll();
    assert.equal(t0.groups.size, 0);
    const step = (headers: FakeHeader[]): Promise<void> => feed(hub, [{ chain: c1, topic: t1 }], headers, 'before');
    return { hub, c1, t1, mover, stayer, moverClient, stayerClient, step };
  }

  /** Both clients got every canonical emitter log from their start exactly once (removals paired). */
  function assertExact(s: Awaited<ReturnType<typeof failover>>, from: bigint, moverFrom = from): void {
    const reference = canonical(s.c1, from);
    assert.deepEqual(logProblems(s.moverClient.logs(s.mover.id), reference.logs, reference.hashes, moverFrom, reference.to), []);
    assert.deepEqual(logProblems(s.stayerClient.logs(s.stayer.id), reference.logs, reference.hashes, from, reference.to), []);
  }

  it('merges back at once when the moved history is a tail of the main one, and nothing is lost or doubled across', async () => {
    const s = await failover({ moverLate: true });
    assert.equal(s.t1.groups.size, 1, 'merged right after the catch-up');
    assert.equal(s.mover.group, s.stayer.group);
    const before = s.hub.publishes;
    await s.step(mine([s.c1], 2));
    assert.equal(s.hub.publishes - before, 4, 'one publish per log');
    const { added } = reorgWithLogs(s.c1, 4); // 104..107: 104 and 105 before the move, 106 and 107 after it
    await s.step(added);
    await s.step(mine([s.c1], 1));
    assertExact(s, 101n, 104n);
    assert.equal(s.moverClient.logs(s.mover.id).filter((log) => log.removed).length, 8, 'removals of 104..107, none of 101..103');
  });

  it('the main group joins a moved group that remembers more', async () => {
    const s = await failover();
    assert.equal(s.t1.groups.size, 1);
    const before = s.hub.publishes;
    await s.step(mine([s.c1], 2));
    assert.equal(s.hub.publishes - before, 4);
    const { added } = reorgWithLogs(s.c1, 6);
    await s.step(added);
    assertExact(s, 101n);
  });

  it('stays apart while the histories differ inside the window; each gets its own removals meanwhile', async () => {
    const s = await failover({ dropOn0: true });
    await s.step(mine([s.c1], 2));
    assert.equal(s.t1.groups.size, 2, 'the mover never got 102#1: neither history is a tail of the other');
    const { added } = reorgWithLogs(s.c1, 6); // 102..107
    await s.step(added);
    const moverRemoved = s.moverClient.logs(s.mover.id).filter((log) => log.removed);
    const stayerRemoved = s.stayerClient.logs(s.stayer.id).filter((log) => log.removed);
    assert.equal(stayerRemoved.length, 12);
    assert.equal(moverRemoved.length, 11, 'no removal of the log it never got');
    assert.equal(s.t1.groups.size, 1, 'block 102 left the chain: the histories agree again');
    const before = s.hub.publishes;
    await s.step(mine([s.c1], 2));
    assert.equal(s.hub.publishes - before, 4);
    assertExact(s, 101n);
  });

  it('merges once the difference leaves the window', async () => {
    const history = 16;
    const s = await failover({ dropOn0: true, historyBlocks: history });
    let merged: bigint | undefined;
    for (let i = 0; i < history + 2 && merged === undefined; i++) {
      await s.step(mine([s.c1], 1));
      if (s.t1.groups.size === 1) merged = s.c1.height;
    }
    assert.equal(merged, 102n + BigInt(history), 'when block 102 left the window');
    const before = s.hub.publishes;
    await s.step(mine([s.c1], 2));
    assert.equal(s.hub.publishes - before, 4, 'one publish per log after the merge');
    const { added } = reorgWithLogs(s.c1, 3);
    await s.step(added);
    assertExact(s, 103n);
  });

  it('a moved group without live logs merges at once and gets no removal of older logs', async () => {
    const hub = new Hub();
    const chains = [new SyntheticChain({ seed: 'quiet', startHeight: 100 }), new SyntheticChain({ seed: 'quiet', startHeight: 100 })];
    const [c0, c1] = chains as [SyntheticChain, SyntheticChain];
    const topics: Topic[] = [];
    const t0 = logsTopic(hub, c0, 'u0', topics);
    const t1 = logsTopic(hub, c1, 'u1', topics);
    const both = [{ chain: c0, topic: t0 }, { chain: c1, topic: t1 }];
    const stayerClient = new FakeClient(hub, 'stayer');
    const moverClient = new FakeClient(hub, 'mover');
    const stayer = await subscribe(t1, stayerClient);
    await feed(hub, both, mine(chains, 1), 'before');
    await feed(hub, both, mine(chains, 1, false), 'before');
    const mover = await subscribe(t0, moverClient);
    const group = mover.group!;
    t1.adopt([mover], { cursor: group.cursor!.clone(), logBook: group.logBook!.clone() });
    await t1.settled();
    hub.drainAll();
    assert.equal(t1.groups.size, 1, 'merged although the main group holds logs the mover never got');
    await feed(hub, [{ chain: c1, topic: t1 }], mine([c1], 1), 'before');
    const { added } = c1.reorg(3); // 101..103
    await feed(hub, [{ chain: c1, topic: t1 }], added, 'before');
    const moverLogs = moverClient.logs(mover.id);
    assert.equal(moverLogs.filter((log) => log.removed).length, 2, 'only the removals of block 103, the one it was sent');
    assert.equal(stayerClient.logs(stayer.id).filter((log) => log.removed).length, 4, 'blocks 101 and 103');
    const reference = canonical(c1, 101n);
    assert.deepEqual(logProblems(moverLogs, reference.logs, reference.hashes, 103n, reference.to), []);
    assert.deepEqual(logProblems(stayerClient.logs(stayer.id), reference.logs, reference.hashes, 101n, reference.to), []);
  });
});

describe('LogsTopic: a reorg whose new logs could not be fetched', () => {
  it('sends no removal until the new branch is in hand: a node that goes back to the old branch leaves its logs live', async () => {
    const hub = new Hub();
    // Two views of one chain: `a` keeps its branch, `b` reorgs; the node moves from one to the other and back.
    const [a, b] = [new SyntheticChain({ seed: 'flip', startHeight: 100 }), new SyntheticChain({ seed: 'flip', startHeight: 100 })] as [SyntheticChain, SyntheticChain];
    const topic = logsTopic(hub, a, 'u0', []);
    const upstream = topic.upstream as ReturnType<typeof fakeUpstream>;
    const client = new FakeClient(hub, 'c');
    const subscription = await subscribe(topic, client);
    await feed(hub, [{ chain: a, topic }], mine([a, b], 3), 'before'); // 101..103 on both
    // The node reorgs 103 away, and its eth_getLogs fails (overloaded, or dying) for the new branch.
    const { added } = reorgWithLogs(b, 1);
    upstream.chain = b;
    upstream.failLogs = true;
    await feed(hub, [{ chain: b, topic }], added, 'none');
    // Back on the first branch: 103 is canonical again, and 104 follows it.
    upstream.chain = a;
    upstream.failLogs = false;
    await feed(hub, [{ chain: a, topic }], mine([a], 1), 'before');
    const logs = client.logs(subscription.id);
    assert.deepEqual(logs.filter((log) => log.removed), [], 'no removal of a block that never left the chain the client follows');
    const reference = canonical(a, 101n);
    assert.deepEqual(logProblems(logs, reference.logs, reference.hashes, 101n, reference.to), []);
  });
});

describe('LogsTopic: a node failing the calls its stream needs', () => {
  it('is reported at the third failed step or catch-up in a row, counted afresh after a catch-up done', async () => {
    const hub = new Hub();
    const chain = new SyntheticChain({ seed: 'failing', startHeight: 100 });
    const reports: string[] = [];
    const topic = logsTopic(hub, chain, 'u0', [], 64, (_topic, error) => reports.push(error.message));
    const upstream = topic.upstream as ReturnType<typeof fakeUpstream>;
    try {
      const client = new FakeClient(hub, 'c');
      const subscription = await subscribe(topic, client);
      await feed(hub, [{ chain, topic }], mine([chain], 1), 'before');
      // A block whose logs do not come live, and eth_getLogs failing: its step fails, and the catch-up right after.
      upstream.failLogs = true;
      const [missed] = mine([chain], 1);
      await feed(hub, [{ chain, topic }], [missed!], 'none');
      await topic.settled();
      assert.deepEqual(reports, [], 'two failures are not reported');
      // The catch-up a second later is done: the count starts again.
      upstream.failLogs = false;
      await waitUntil('the catch-up done', () => (hub.drainAll(), client.logs(subscription.id).some((log) => log.blockHash === missed!.hash)), 3000);
      upstream.failLogs = true;
      await feed(hub, [{ chain, topic }], mine([chain], 1), 'none');
      await topic.settled();
      assert.deepEqual(reports, [], 'two failures after a catch-up done are not reported');
      await feed(hub, [{ chain, topic }], mine([chain], 1), 'none');
      assert.deepEqual(reports, ['eth_getLogs failed'], 'the third in a row is');
    } finally {
      topic.close();
    }
  });
});
