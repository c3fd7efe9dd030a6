import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Group, type ClientSubscription, type Subscriber } from '../../src/subs/group.js';
import { notificationFrame, subscriptionId } from '../../src/subs/subscription-id.js';
import { parseSubscription } from '../../src/subs/subscription-params.js';

describe('subscriptionId', () => {
  it('is derived from the filter alone: the same for every connection, 16 bytes of hex', () => {
    const id = subscriptionId('newHeads', 0);
    assert.match(id, /^0x[0-9a-f]{32}$/);
    assert.equal(subscriptionId('newHeads', 0), id);
    const a = parseSubscription(['logs', { address: '0x00000000000000000000000000000000000000AA', topics: [] }]);
    const b = parseSubscription(['logs', { address: ['0x00000000000000000000000000000000000000aa'] }]);
    assert.equal(subscriptionId(a.fingerprint, 0), subscriptionId(b.fingerprint, 0), 'equivalent filters share an id');
  });

  it('differs between filters and between variants of one filter', () => {
    const ids = new Set([subscriptionId('newHeads', 0), subscriptionId('newHeads', 1), subscriptionId('newHeads', 2), subscriptionId('syncing', 0)]);
    assert.equal(ids.size, 4);
  });

  it('frames a serialized result without re-serializing it', () => {
    const frame = notificationFrame('0xabc', '{"number":"0x1"}');
    assert.deepEqual(JSON.parse(frame), { jsonrpc: '2.0', method: 'eth_subscription', params: { subscription: '0xabc', result: { number: '0x1' } } });
  });
});

class FakeSubscriber implements Subscriber {
  readonly ip = '127.0.0.1';
  readonly topics = new Set<string>();
  checks = 0;
  closed = false;
  constructor(readonly sessionKey = 'ip:127.0.0.1') {}
  joinTopic(topic: string): void {
    this.topics.add(topic);
  }
  leaveTopic(topic: string): void {
    this.topics.delete(topic);
  }
  checkBackpressure(): boolean {
    this.checks++;
    return true;
  }
  readonly sent: string[] = [];
  send(text: string): boolean {
    this.sent.push(text);
    return true;
  }
}

const nextImmediate = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function member(subscriber: FakeSubscriber, variant: number, started = true): ClientSubscription {
  const spec = parseSubscription(['newHeads']);
  return { id: subscriptionId(spec.fingerprint, variant), variant, spec, subscriber, group: undefined, started };
}

describe('Group', () => {
  it('publishes once per variant in use, each frame under that variant id, to that variant topic', async () => {
    const published: Array<{ topic: string; frame: string }> = [];
    const group = new Group('newHeads', (topic, frame) => published.push({ topic, frame }));
    const one = new FakeSubscriber();
    const two = new FakeSubscriber();
    group.add(member(one, 0));
    group.add(member(one, 1)); // the same connection subscribed twice
    group.add(member(two, 0));
    group.publish('{"n":1}');
    assert.deepEqual(published.map((p) => p.topic).sort(), [group.topicName(0), group.topicName(1)]);
    for (const { topic, frame } of published) {
      const variant = Number(topic.split('/')[1]);
      assert.equal(JSON.parse(frame).params.subscription, subscriptionId('newHeads', variant));
    }
    assert.deepEqual([...one.topics].sort(), [group.topicName(0), group.topicName(1)]);
    assert.deepEqual([...two.topics], [group.topicName(0)]);
    await nextImmediate();
    assert.equal(one.checks, 2, 'backpressure checked for each membership after the publish');
  });

  it('checks buffers once per event loop turn, after the publishes of that turn went out', async () => {
    const published: string[] = [];
    const group = new Group('newHeads', (_topic, frame) => published.push(frame));
    const client = new FakeSubscriber();
    group.add(member(client, 0));
    group.publish('{"n":1}');
    group.publish('{"n":2}');
    group.publish('{"n":3}');
    assert.equal(published.length, 3);
    assert.equal(client.checks, 0, 'nothing checked before uWS sent the frames');
    await nextImmediate();
    assert.equal(client.checks, 1, 'one check for the three publishes');
    group.publish('{"n":4}');
    await nextImmediate();
    assert.equal(client.checks, 2, 'the next turn checks again');
  });

  it('a member not started yet (its subscribe reply not sent) joins no topic and is not checked', async () => {
    const group = new Group('newHeads', () => {});
    const late = new FakeSubscriber();
    const subscription = member(late, 0, false);
    group.add(subscription);
    group.publish('{}');
    await nextImmediate();
    assert.equal(late.topics.size, 0);
    assert.equal(late.checks, 0);
    assert.equal(subscription.group, group);
  });

  it('stops publishing a variant when its last member leaves, and leaves the topic', () => {
    const published: string[] = [];
    const group = new Group('newHeads', (topic) => published.push(topic));
    const client = new FakeSubscriber();
    const first = member(client, 0);
    const second = member(client, 1);
    group.add(first);
    group.add(second);
    group.remove(second);
    assert.equal(second.group, undefined);
    assert.deepEqual([...client.topics], [group.topicName(0)]);
    group.publish('{}');
    assert.deepEqual(published, [group.topicName(0)]);
    group.remove(first);
    group.publish('{}');
    assert.equal(published.length, 1, 'an empty group publishes nothing');
  });

  it('groups of one topic publish identical bytes: the frame depends on the filter, not the group', () => {
    const frames: string[] = [];
    const a = new Group('newHeads', (_topic, frame) => frames.push(frame));
    const b = new Group('newHeads', (_topic, frame) => frames.push(frame));
    a.add(member(new FakeSubscriber(), 0));
    b.add(member(new FakeSubscriber('ip:10.0.0.1'), 0));
    a.publish('{"hash":"0x1"}');
    b.publish('{"hash":"0x1"}');
    assert.equal(frames[0], frames[1]);
    assert.notEqual(a.topicName(0), b.topicName(0));
  });
});
