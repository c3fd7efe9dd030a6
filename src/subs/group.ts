/**
 * A group of client subscriptions of one topic that share a delivered history, so each
 * notification is serialized once per variant and published to the group's uWS topic. A topic has
 * a main group; clients moved in by failover form their own group until their history matches.
 *
 * Logs subscriptions that join a group later than others were not sent what the group delivered
 * before they joined, so removals are routed: each subscription remembers the log book's sequence
 * number when it joined (`since`), and a removal of a log sent before that goes only to the members
 * that were sent it. The common case (no such member) is still one publish.
 */
import type { TrackedHead } from '../upstream/head.js';
import type { ChainCursor } from './chain-cursor.js';
import type { LogBook } from './log-book.js';
import { notificationFrame, subscriptionId } from './subscription-id.js';
import type { SubscriptionSpec } from './subscription-params.js';

/** What a subscription needs from the client connection that holds it. */
export interface Subscriber {
  readonly sessionKey: string;
  /** the client's address (behind a trusted proxy, the one its header names) */
  readonly ip: string;
  readonly closed: boolean;
  joinTopic(topic: string): void;
  /** send one frame to this client alone (the greeting head of a new newHeads subscription) */
  send(text: string): boolean;
  leaveTopic(topic: string): void;
  /** enforce the send buffer cap after a publish reached this client */
  checkBackpressure(): boolean;
}

export interface ClientSubscription {
  readonly id: string;
  readonly variant: number;
  readonly spec: SubscriptionSpec;
  readonly subscriber: Subscriber;
  group: Group | undefined;
  /** true once the subscribe response went out; only then does it receive notifications */
  started: boolean;
  /**
   * logs: its group's log book sequence number when it joined (or when it moved into a group whose
   * live logs it had all been sent); it was sent, or is sent at its start, exactly the logs numbered
   * above. @default 0
   */
  since?: number;
  /**
   * The node's head, asked for right before the reply when the subscription's stream had not
   * started (logs: the stream is anchored there in its topic's queue after the reply,
   * LogsTopic.start, also on the node it moved to meanwhile), or was behind the node (a replay:
   * a group below that head does not take the subscription, Topic.admits).
   */
  startHead?: TrackedHead;
}

export type Publish = (topic: string, frame: string) => void;

/** A serialized removed:true log and the log book sequence number at which it was sent live. */
export interface Removal {
  json: string;
  sentSeq: number;
}

let groupSequence = 0;

export class Group {
  readonly key = `g${++groupSequence}`;
  readonly members = new Set<ClientSubscription>();
  readonly logBook: LogBook | undefined;
  #cursor: ChainCursor<TrackedHead> | undefined;
  readonly #fingerprint: string;
  readonly #variants = new Map<number, number>();
  /** the subscription id of each variant, worked out once (a fingerprint can be 44 KB long) */
  readonly #ids: string[] = [];
  readonly #publish: Publish;
  #checkQueued = false;

  constructor(fingerprint: string, publish: Publish, state: { cursor?: ChainCursor<TrackedHead>; logBook?: LogBook } = {}) {
    this.#fingerprint = fingerprint;
    this.#publish = publish;
    this.#cursor = state.cursor;
    this.logBook = state.logBook;
  }

  get cursor(): ChainCursor<TrackedHead> | undefined {
    return this.#cursor;
  }

  get size(): number {
    return this.members.size;
  }

  topicName(variant: number): string {
    return `${this.key}/${variant}`;
  }

  /**
   * Take over a cursor that ends at the same head but remembers more of the chain (a group merged
   * into this one had it): reorgs that deep are then still replayed instead of cut short.
   */
  replaceCursor(cursor: ChainCursor<TrackedHead>): void {
    if (cursor.last?.hash !== this.#cursor?.last?.hash) throw new Error('replaceCursor: the cursors end at different heads');
    this.#cursor = cursor;
  }

  add(subscription: ClientSubscription): void {
    this.members.add(subscription);
    subscription.group = this;
    this.#variants.set(subscription.variant, (this.#variants.get(subscription.variant) ?? 0) + 1);
    if (subscription.started) subscription.subscriber.joinTopic(this.topicName(subscription.variant));
  }

  /** Leave this group. A subscription already added to another group (a move) stays there. */
  remove(subscription: ClientSubscription): void {
    if (!this.members.delete(subscription)) return;
    if (subscription.group === this) subscription.group = undefined;
    const count = (this.#variants.get(subscription.variant) ?? 1) - 1;
    if (count === 0) this.#variants.delete(subscription.variant);
    else this.#variants.set(subscription.variant, count);
    if (subscription.started) subscription.subscriber.leaveTopic(this.topicName(subscription.variant));
  }

  /** Send one already serialized result to every started member; their buffer caps are checked after it went out. */
  publish(resultJson: string): void {
    if (this.members.size === 0) return;
    for (const variant of this.#variants.keys()) {
      this.#publish(this.topicName(variant), notificationFrame((this.#ids[variant] ??= subscriptionId(this.#fingerprint, variant)), resultJson));
    }
    if (!this.#checkQueued) {
      this.#checkQueued = true;
      setImmediate(this.#checkMembers);
    }
  }

  /**
   * uWS sends what was published in the event loop's check phase, after every callback of the poll,
   * and before the check phase's immediates. Checked right after each publish, 10,000 members' buffers
   * held up the sends by the whole sweep (per group and per publish) and showed what was queued
   * before the frame. Checked from an immediate, once per group however many frames the poll
   * published, they include it, and the clients already have it.
   */
  readonly #checkMembers = (): void => {
    this.#checkQueued = false;
    for (const member of this.members) {
      if (member.started) member.subscriber.checkBackpressure();
    }
  };

  /**
   * Send removals, in order, each only to the members that were sent the log. Members that started
   * after one of them was sent step out of the group topic while the removals are published, get
   * theirs sent directly, and step back in; the connection stays subscribed to a holding topic
   * meanwhile, because uWS drops what is still queued for a connection left with no topic at all.
   * Rejoining a topic flushes the direct frames first, so nothing later overtakes them.
   */
  publishRemovals(removals: readonly Removal[]): void {
    if (removals.length === 0 || this.members.size === 0) return;
    let first = Number.POSITIVE_INFINITY;
    for (const removal of removals) if (removal.sentSeq < first) first = removal.sentSeq;
    const late: ClientSubscription[] = [];
    for (const member of this.members) {
      if (member.started && !member.subscriber.closed && (member.since ?? 0) >= first) late.push(member);
    }
    if (late.length === 0) {
      for (const removal of removals) this.publish(removal.json);
      return;
    }
    const hold = `${this.key}/hold`;
    for (const member of late) {
      member.subscriber.joinTopic(hold);
      member.subscriber.leaveTopic(this.topicName(member.variant));
    }
    for (const removal of removals) this.publish(removal.json);
    for (const member of late) {
      const { subscriber } = member;
      if (member.group === this && !subscriber.closed) {
        for (const removal of removals) {
          if (removal.sentSeq > (member.since ?? 0)) subscriber.send(notificationFrame(member.id, removal.json));
        }
        if (member.group === this && !subscriber.closed) subscriber.joinTopic(this.topicName(member.variant));
      }
      subscriber.leaveTopic(hold);
    }
  }
}
