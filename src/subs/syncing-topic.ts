/**
 * syncing: a stream of states, not of events. Nodes (reth, geth once synced) send each new
 * subscription their current status right after the reply, `false` when synced; here one
 * eth_subscribe per node serves every client, so the topic does it for them: a new subscription
 * is sent the node's status first, and clients moved in from another node are sent it when it
 * differs from the last status they got. The node's status is the last its stream sent; with
 * none, the node is asked (eth_syncing), and `false` is taken from its answer (an answer that it
 * is syncing is shaped unlike a notification, so its stream is waited for). A status the same as
 * the last its clients got is not sent to them again: a node greeting its subscription made anew,
 * or repeating itself.
 */
import { performance } from 'node:perf_hooks';
import type { ClientSubscription, Group } from './group.js';
import { notificationFrame } from './subscription-id.js';
import { StreamTopic } from './stream-topic.js';
import type { GroupState, Topic } from './topic.js';

/**
 * A node's answer to eth_syncing stands for this long: new subscriptions start one after another
 * in the topic's queue, and each asked again while the node was syncing (a thousand of them asked
 * a node that hung one request timeout each).
 */
const ASK_AGAIN_MS = 5000;

export class SyncingTopic extends StreamTopic {
  /** per group: the last status its clients were sent, serialized; every member got it */
  readonly #sent = new WeakMap<Group, string>();
  /** the node's last answer when asked for its status, and when (performance.now()) */
  #asked: { at: number; status: string | undefined } | undefined;

  onResult(result: unknown): void {
    const json = JSON.stringify(result);
    for (const group of this.groups) this.#send(group, json);
  }

  /** The node's subscription was made anew: a status it changed to meanwhile is asked for. */
  onResumed(): void {
    for (const group of this.groups) this.scheduleCatchUp(group);
  }

  /**
   * A new subscription first gets its group's status, sent to it alone, and only then joins the
   * group's stream. Queued with the catch-ups, so a status they send is not missed or doubled.
   */
  override start(subscription: ClientSubscription): void {
    this.enqueue(async () => {
      const group = subscription.group;
      if (subscription.started || group === undefined || subscription.subscriber.closed) return;
      // Moved by a failover before it started: greeted in the queue of the topic that holds it now.
      if (!this.groups.has(group)) return this.deps.start(subscription);
      try {
        // A group with a status keeps it current (catch-ups): the node is asked only for a first one.
        await this.#toNodeStatus(group, !this.#sent.has(group));
      } catch (error) {
        this.deps.warnings.warn({ upstream: this.upstream.name, err: (error as Error).message }, 'could not read the sync status for a new subscription');
      }
      if (subscription.group !== group) return this.deps.start(subscription);
      const status = this.#sent.get(group);
      if (status !== undefined) subscription.subscriber.send(notificationFrame(subscription.id, status));
      super.start(subscription);
    });
  }

  /** Clients moved here from `from`: their group here starts from the last status they got there. */
  override adopt(members: ClientSubscription[], state: GroupState, from?: Topic): Group {
    const left = members[0]?.group;
    const status = from instanceof SyncingTopic && left !== undefined ? from.#sent.get(left) : undefined;
    const group = super.adopt(members, state, from);
    if (status !== undefined) this.#sent.set(group, status);
    return group;
  }

  protected async catchUp(group: Group): Promise<void> {
    await this.#toNodeStatus(group, true);
  }

  /** Send `group` the node's status if it differs from its last; with none from the stream, the node is asked when `ask`. */
  async #toNodeStatus(group: Group, ask: boolean): Promise<void> {
    let status = this.#streamStatus();
    if (status === undefined && ask) {
      const answer = await this.#askedStatus();
      // What the stream sent meanwhile is newer than the answer.
      status = this.#streamStatus() ?? answer;
    }
    if (status !== undefined && this.groups.has(group)) this.#send(group, status);
  }

  /** The node's answer to eth_syncing as a status: `false` when synced, else none; one asked lately is reused. */
  async #askedStatus(): Promise<string | undefined> {
    const recent = this.#asked;
    if (recent !== undefined && performance.now() - recent.at < ASK_AGAIN_MS) return recent.status;
    // Not asked again while this call is out, nor for a while after it failed.
    this.#asked = { at: performance.now(), status: undefined };
    const status = (await this.calls.syncing()) === false ? 'false' : undefined;
    this.#asked = { at: performance.now(), status };
    return status;
  }

  #streamStatus(): string | undefined {
    const state = this.stream?.state;
    return state === undefined ? undefined : JSON.stringify(state);
  }

  #send(group: Group, json: string): void {
    if (this.#sent.get(group) === json) return;
    this.#sent.set(group, json);
    group.publish(json);
  }
}
