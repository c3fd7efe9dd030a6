/**
 * A group of client subscriptions of one topic that share a delivered history, so each
 * notification is serialized once per variant and published to the group's uWS topic. A topic has
 * a main group; clients moved in by failover form their own group until their history matches.
 */
import type { TrackedHead } from '../upstream/head.js';
import type { ChainCursor } from './chain-cursor.js';
import type { LogBook } from './log-book.js';
import { notificationFrame, subscriptionId } from './subscription-id.js';
import type { SubscriptionSpec } from './subscription-params.js';

/** What a subscription needs from the client connection that holds it. */
export interface Subscriber {
  readonly sessionKey: string;
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
}

export type Publish = (topic: string, frame: string) => void;

let groupSequence = 0;

export class Group {
  readonly key = `g${++groupSequence}`;
  readonly members = new Set<ClientSubscription>();
  readonly cursor: ChainCursor<TrackedHead> | undefined;
  readonly logBook: LogBook | undefined;
  readonly #fingerprint: string;
  readonly #variants = new Map<number, number>();
  readonly #publish: Publish;

  constructor(fingerprint: string, publish: Publish, state: { cursor?: ChainCursor<TrackedHead>; logBook?: LogBook } = {}) {
    this.#fingerprint = fingerprint;
    this.#publish = publish;
    this.cursor = state.cursor;
    this.logBook = state.logBook;
  }

  get size(): number {
    return this.members.size;
  }

  topicName(variant: number): string {
    return `${this.key}/${variant}`;
  }

  add(subscription: ClientSubscription): void {
    this.members.add(subscription);
    subscription.group = this;
    this.#variants.set(subscription.variant, (this.#variants.get(subscription.variant) ?? 0) + 1);
    if (subscription.started) subscription.subscriber.joinTopic(this.topicName(subscription.variant));
  }

  remove(subscription: ClientSubscription): void {
    if (!this.members.delete(subscription)) return;
    subscription.group = undefined;
    const count = (this.#variants.get(subscription.variant) ?? 1) - 1;
    if (count === 0) this.#variants.delete(subscription.variant);
    else this.#variants.set(subscription.variant, count);
    if (subscription.started) subscription.subscriber.leaveTopic(this.topicName(subscription.variant));
  }

  /** Send one already serialized result to every started member, then enforce buffer caps. */
  publish(resultJson: string): void {
    if (this.members.size === 0) return;
    for (const variant of this.#variants.keys()) {
      this.#publish(this.topicName(variant), notificationFrame(subscriptionId(this.#fingerprint, variant), resultJson));
    }
    for (const member of this.members) {
      if (member.started) member.subscriber.checkBackpressure();
    }
  }
}
