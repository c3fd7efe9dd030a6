/**
 * logs for one upstream and one filter. Live logs come from the node's logs subscription (to the
 * filter without block numbers: topics that differ only in them share it, each keeping the logs of
 * its own blocks) and are held until their block is on the group's delivered chain (the node's
 * newHeads stream drives the cursor), so delivery follows block order. A block whose live logs did
 * not come (a gap, a reorg, a failover, a node that sends logs after the head, a logs stream that
 * was being re-made) gets them from eth_getLogs, unless its logs bloom rules the filter out. Logs of
 * orphaned blocks go out again with removed: true before the new branch's logs. The log book makes
 * every log go out once.
 *
 * Removals come from the heads alone: a log goes out with removed: true when the node's newHeads
 * take its block off the delivered chain. The node's own removed: true logs are not forwarded. In a
 * reorg they say what the heads say a moment later; from a node that retracts a block its heads
 * still hold canonical, they would take a canonical log from the client for good.
 *
 * A cursor step, with the removals it brings, takes effect only after the logs of its blocks are in
 * hand: a failed fetch leaves the group where it was (the next head or the catch-up retry replays
 * those blocks, or the node goes back to the old branch and nothing was undone), and a group split
 * off by failover meanwhile never inherits blocks whose logs it was not sent.
 *
 * A client that subscribes after the group delivered logs joins the group anyway: it remembers the
 * log book's sequence number at its start, and removals of logs sent before that skip it (see
 * Group.publishRemovals), so no extra group and no extra publish is needed for it. Not while the
 * group replays blocks below the node's head (moved in, or its stream resumed): those were mined
 * before the client subscribed, and it starts at that head in a group of its own. A group moved in
 * by failover merges back into the main group (or the main group into it) as soon as both are at
 * the same head and what each member was sent, still live, is a tail of the other group's live logs
 * (mergeable); the books keep only the reorg window, so histories that differ merge once the
 * difference has left it.
 */
import { performance } from 'node:perf_hooks';
import { isAnswerTooLarge, isLogsRangeRefused, isSocketGone } from '../upstream/errors.js';
import type { TrackedHead } from '../upstream/head.js';
import { NODE_WAIT_MS } from '../upstream/pool.js';
import { ChainCursor, type AdvanceResult } from './chain-cursor.js';
import type { ClientSubscription, Group, Removal } from './group.js';
import type { HeadFeed, HeadListener } from './head-feed.js';
import { bloomMayMatch, bloomQuery, type BloomQuery } from './log-bloom.js';
import { LogBook, parseLog, type LogEntry } from './log-book.js';
import { withinBlocks } from './subscription-params.js';
import { notificationFrame } from './subscription-id.js';
import type { StreamUser, UpstreamStream } from './upstream-stream.js';
import { Topic, type GroupState } from './topic.js';

/** Live logs kept for blocks this many below the newest head seen. */
const PENDING_WINDOW = 64n;
/** Blocks delivered just before a failover whose logs are looked up again on the new node. */
const RECHECK_BLOCKS = 2;
/** Requests for a new stream's anchor, and the pause between them */
const ANCHOR_ATTEMPTS = 3;
const ANCHOR_RETRY_MS = 200;
/** Up to this many blocks are fetched by hash (exact); more by one range query (then checked). */
const BY_HASH_MAX = 3;

const logJson = new WeakMap<Record<string, unknown>, string>();

function serializeLog(entry: LogEntry): string {
  let json = logJson.get(entry.raw);
  if (json === undefined) {
    json = JSON.stringify(entry.raw);
    logJson.set(entry.raw, json);
  }
  return json;
}

/** A removal the book produced, with when its log was sent (unknown cannot happen: then to all). */
function removal(book: LogBook, removed: LogEntry): Removal {
  return { json: serializeLog(removed), sentSeq: book.sentSeq(removed.blockHash, removed.logIndex) ?? Number.MAX_SAFE_INTEGER };
}

function byPosition(a: LogEntry, b: LogEntry): number {
  if (a.blockNumber !== b.blockNumber) return a.blockNumber < b.blockNumber ? -1 : 1;
  return a.logIndex - b.logIndex;
}

export class LogsTopic extends Topic implements HeadListener, StreamUser {
  #feed: HeadFeed | undefined;
  #stream: UpstreamStream | undefined;
  /** live logs by block hash, waiting for (or already past) their block on each group's chain */
  readonly #pending = new Map<string, { number: bigint; logs: LogEntry[] }>();
  #newest = -1n;
  #bloom: BloomQuery | undefined;

  attach(): void {
    this.#feed = this.deps.headFeed(this.upstream);
    this.#feed.add(this);
    this.#stream = this.deps.registry.get(this.upstream, this.spec.streamKey, 'logs', this.spec.upstreamParams);
    this.#stream.addUser(this);
  }

  detach(): void {
    this.#feed?.remove(this);
    this.#stream?.removeUser(this);
    this.#feed = undefined;
    this.#stream = undefined;
  }

  async ready(): Promise<void> {
    if (this.#feed === undefined || this.#stream === undefined) throw new Error('topic detached');
    await Promise.all([this.#feed.ready(), this.#stream.ready()]);
  }

  /**
   * The node's head, asked for before the reply of a subscription whose stream has not started:
   * its anchor (ClientSubscription.startHead). Asked for after the reply, a block mined meanwhile
   * was taken for the start block and its logs withheld as from before the subscription; when the
   * node's logs stream was being made again at that moment (its socket dropped), or the
   * subscription moved to another node before it was anchored, they were never sent. Not asked
   * when the stream is under way at the node's head: the subscription joins it there. Asked when
   * it is behind (mainBehind: a replay after a move or a resumed stream), whose blocks up to the
   * node's head were mined before the subscription: answered above the stream's tip, it starts at
   * the node's head in a group of its own (admits).
   *
   * Its sockets away (closed as it was asked: a blip), the head is waited for (#currentHead); away
   * longer, the head its stream had when they closed (Upstream.headAtClose). Knowing none, the
   * subscribe fails (and is tried again, as a subscribe on a node failing under it is) rather than
   * start past blocks mined after its reply. A node that answers without a head is asked again
   * after the reply (#anchor).
   */
  override async startHead(): Promise<TrackedHead | undefined> {
    if (this.mainStarted && !this.mainBehind) return undefined;
    try {
      return (await this.#currentHead()) ?? undefined;
    } catch (error) {
      if (!isSocketGone(error)) return undefined;
      const last = this.upstream.headAtClose;
      if (last !== undefined) return last;
      throw error;
    }
  }

  /** The node's current head, waited for up to NODE_WAIT_MS while its sockets are away (closed as it was asked: a blip). */
  async #currentHead(): Promise<TrackedHead | null> {
    const until = performance.now() + NODE_WAIT_MS;
    for (;;) {
      try {
        return await this.calls.latest();
      } catch (error) {
        if (!isSocketGone(error) || !(await this.upstream.untilConnected(until))) throw error;
      }
    }
  }

  protected freshState(): GroupState {
    return { cursor: new ChainCursor<TrackedHead>({ capacity: this.deps.historyBlocks }), logBook: new LogBook({ capacityBlocks: this.deps.historyBlocks }) };
  }

  onHead(head: TrackedHead): void {
    if (head.number > this.#newest) this.#newest = head.number;
    this.enqueue(async () => {
      await this.eachGroup(async (group) => {
        if (!this.#awaitsStart(group)) await this.#advance(group, head, false);
      });
      this.#prune();
      this.mergeGroups();
    });
  }

  /** A live log from the node's logs subscription. */
  onResult(result: unknown): void {
    let entry: LogEntry;
    try {
      entry = parseLog(result as Record<string, unknown>);
    } catch (error) {
      this.deps.warnings.warn({ upstream: this.upstream.name, err: (error as Error).message }, 'ignoring malformed log notification');
      return;
    }
    this.enqueue(() => this.#onLog(entry));
  }

  onResumed(): void {
    for (const group of this.groups) this.scheduleCatchUp(group);
  }

  /**
   * A subscription is sent what its group sends from the moment it joins (as its subscribe is
   * answered by the node), also what goes out before its reply does: in a batch, the reply waits
   * for the batch's slowest call. Those logs are held in the log book and sent to it at its start.
   */
  override join(subscription: ClientSubscription): void {
    super.join(subscription);
    subscription.since = subscription.group!.logBook!.seq;
  }

  /**
   * A group not yet anchored is anchored at the head its first member to start was answered at:
   * it takes only subscriptions answered at that same head. One answered at another head gets a
   * group of its own, anchored at its own head, and joins the other once both delivered the same
   * head: in one group, the later one lost the logs of the blocks in between, or the earlier one
   * was sent logs of blocks from before it subscribed. An anchored group takes those answered at
   * or below its tip (Topic.admits).
   */
  protected override admits(group: Group, subscription: ClientSubscription): boolean {
    if (group.cursor!.last !== undefined) return super.admits(group, subscription);
    // Its members share one head: the first one's tells.
    for (const member of group.members) return member.startHead?.hash === subscription.startHead?.hash;
    return true;
  }

  /**
   * A fresh group starts at the node's head as the client subscribed (startHead): that block is the
   * stream's anchor, so a failover before the first live head still replays every block after the
   * start. Logs of the anchor that come live before the next block are sent (it may have been mined
   * as the client subscribed); once a later block is delivered they are withheld (see
   * LogBook.startAt). Heads that came while no member had started were not followed (#awaitsStart):
   * the group catches up with them at once.
   */
  override start(subscription: ClientSubscription): void {
    this.enqueue(async () => {
      const group = subscription.group;
      if (subscription.started || group === undefined || subscription.subscriber.closed) return;
      if (!this.groups.has(group)) return this.deps.start(subscription);
      if (group.cursor!.last === undefined) {
        try {
          const latest = subscription.startHead ?? (await this.#anchor(subscription, group));
          if (latest !== null && group.cursor!.last === undefined) {
            group.cursor!.commit(await group.cursor!.plan(latest, this.calls, this.bounds(group)));
            group.logBook!.startAt(latest.hash, latest.number);
          }
        } catch (error) {
          this.deps.warnings.warn({ upstream: this.upstream.name, err: (error as Error).message }, 'could not anchor a new logs subscription at the current head');
        }
      }
      if (subscription.group !== group) return this.deps.start(subscription);
      // Sent what the group sent since it joined and is still live, then what the group publishes.
      for (const entry of group.logBook!.liveSince(subscription.since ?? group.logBook!.seq)) {
        subscription.subscriber.send(notificationFrame(subscription.id, serializeLog(entry)));
      }
      super.start(subscription);
      const [known, tip] = [this.upstream.head, group.cursor!.last];
      if (known !== undefined && tip !== undefined && known.number > tip.number) this.scheduleCatchUp(group);
    });
  }

  /**
   * The head a new stream starts at when none was had before its reply (startHead): the node's
   * current one. Unanchored, a stream that fails over before its first head
   * starts again at the next node's head, and the blocks between are never looked at. So a failed
   * request is made again, ANCHOR_ATTEMPTS in all while the subscription stays on this topic, and
   * after that the last head the node sent will do.
   */
  async #anchor(subscription: ClientSubscription, group: Group): Promise<TrackedHead | null> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.calls.latest();
      } catch (error) {
        const last = attempt >= ANCHOR_ATTEMPTS || subscription.group !== group || subscription.subscriber.closed;
        if (last) {
          // The node's head stream keeps its last head on the upstream (HeadFeed, noteHead).
          const sent = this.upstream.head;
          if (sent === undefined) throw error;
          return sent;
        }
        await new Promise((resolve) => setTimeout(resolve, ANCHOR_RETRY_MS));
      }
    }
  }

  protected async catchUp(group: Group): Promise<void> {
    // Moved here before they were anchored: start() anchors them, at the head they were answered
    // at. Anchored here at this node's head instead, they would miss the blocks in between.
    if (this.#awaitsStart(group)) return;
    const latest = await this.calls.latest();
    if (latest === null) throw new Error('node returned no latest block');
    // The logs of the last blocks delivered before the move may not all have arrived: look again.
    await this.#advance(group, latest, true, group.cursor!.snapshot().slice(-RECHECK_BLOCKS));
    this.mergeGroups();
  }

  /**
   * `group` can be served by `target` when both delivered the same head and every started member
   * of `group` was sent exactly a tail of `target`'s live logs (books keep only the reorg window):
   * its start restated in `target`'s numbering then routes it the removals it is due, no others.
   */
  protected override mergeable(target: Group, group: Group): boolean {
    return super.mergeable(target, group) && this.#restated(target, group) !== undefined;
  }

  protected override merging(target: Group, group: Group): void {
    for (const [member, since] of this.#restated(target, group) ?? []) member.since = since;
    // Same head, so the longer cursor holds the shorter one: keep the deeper reorg window.
    if (group.cursor!.size > target.cursor!.size) target.replaceCursor(group.cursor!);
  }

  /**
   * No member has started and the group has no anchor yet: start() anchors it at the head its first
   * member was answered at. Heads before that are not followed: the first would be taken for the
   * start block, and the logs of blocks between it and the anchor would never be sent.
   */
  #awaitsStart(group: Group): boolean {
    return group.cursor!.last === undefined && ![...group.members].some((member) => member.started);
  }

  #restated(target: Group, group: Group): Map<ClientSubscription, number> | undefined {
    const into = target.logBook!;
    const from = group.logBook!;
    const byStart = new Map<number, number | undefined>();
    const out = new Map<ClientSubscription, number>();
    // Members not started yet too: they are sent the logs numbered above their start when they do.
    for (const member of group.members) {
      const since = member.since ?? 0;
      if (!byStart.has(since)) byStart.set(since, into.restate(from, since));
      const restated = byStart.get(since);
      if (restated === undefined) return undefined;
      out.set(member, restated);
    }
    return out;
  }

  async #onLog(entry: LogEntry): Promise<void> {
    // The node's removals are not forwarded (the heads decide, see above), and it is sent the
    // filter without the subscription's block numbers (subscription-params.ts).
    if (entry.removed || !withinBlocks(this.spec.blocks, entry.blockNumber)) return;
    let block = this.#pending.get(entry.blockHash);
    if (block === undefined) {
      block = { number: entry.blockNumber, logs: [] };
      this.#pending.set(entry.blockHash, block);
    }
    block.logs.push(entry);
    await this.eachGroup(async (group) => {
      const cursor = group.cursor!;
      const tip = cursor.last;
      if (cursor.has(entry.blockHash)) {
        // Its block is already delivered: the log came after the head.
        this.#deliver(group, [entry]);
      } else if (tip !== undefined && entry.blockNumber === tip.number) {
        // A block at the tip's height that is not on the delivered chain: the node reorged
        // before telling us through newHeads. Resolve the reorg first so removals go out first.
        const head = await this.calls.byHash(entry.blockHash);
        if (head !== null) await this.#advance(group, head, false);
      }
      // Otherwise the block is ahead of the group's chain, or below its tip on a branch the cursor
      // waits on until it reaches the tip (ChainCursor): it goes out when the branch is delivered.
    });
  }

  async #advance(group: Group, head: TrackedHead, replay: boolean, recheck: TrackedHead[] = []): Promise<void> {
    const cursor = group.cursor!;
    const book = group.logBook!;
    const step = await cursor.plan(head, this.calls, this.bounds(group));
    const { result } = step;
    const orphaned = new Set(result.orphaned.map((orphan) => orphan.hash));
    // The start block is not looked at again: whatever of its logs did not come live came before the client.
    const again = result.truncated ? [] : recheck.filter((block) => cursor.has(block.hash) && !orphaned.has(block.hash) && !book.isStart(block.hash));
    const blocks = [...again, ...result.deliver];
    const entries = blocks.length === 0 ? [] : await this.#logsOf(blocks, new Set(again.map((block) => block.hash)));
    // Only now, with the new branch's logs in hand, do removals go out and the blocks count as
    // delivered, together (no await in between). Removals sent before a fetch that failed would
    // stand should the node go back to the old branch: its next head links to the tip, and those
    // logs, canonical again, would never be sent again.
    if (result.orphaned.length > 0) {
      group.publishRemovals(book.orphan([...orphaned]).map((removed) => removal(book, removed)));
      this.deps.telemetry.reorg(result.orphaned, result.deliver);
    }
    if (blocks.length === 0) return;
    cursor.commit(step);
    if (result.deliver.length > 0) book.sealStart();
    this.#account(group, result);
    // Counted as newHeads counts its heads: the head the node just sent is live, in a reorg too;
    // the blocks before it (a gap, a new branch below it) and all of a catch-up are replayed.
    const replayed = this.#deliver(group, entries, replay ? undefined : result.deliver.at(-1)?.hash);
    // Below the cursor's window no removal can be due: the book forgets it too.
    book.forgetBelow(cursor.last!.number - BigInt(cursor.size) + 1n);
    if (replayed > 0) this.deps.telemetry.replayed('logs', replayed);
  }

  /**
   * The logs of `blocks` in block order: live ones held for them, the rest fetched. None for blocks
   * outside the subscription's fromBlock and toBlock numbers.
   */
  async #logsOf(blocks: TrackedHead[], suspect: ReadonlySet<string>): Promise<LogEntry[]> {
    this.#bloom ??= bloomQuery(this.spec.filter ?? {});
    const entries: LogEntry[] = [];
    const missing: TrackedHead[] = [];
    for (const block of blocks) {
      if (!withinBlocks(this.spec.blocks, block.number)) continue;
      const live = this.#pending.get(block.hash)?.logs ?? [];
      entries.push(...live);
      if ((live.length === 0 || suspect.has(block.hash)) && bloomMayMatch(block.raw['logsBloom'], this.#bloom)) missing.push(block);
    }
    if (missing.length > 0) entries.push(...(await this.#fetchLogs(missing)));
    return entries.sort(byPosition);
  }

  async #fetchLogs(blocks: TrackedHead[]): Promise<LogEntry[]> {
    const filter = this.spec.filter ?? {};
    const criteria: Record<string, unknown> = {};
    if (filter.address !== undefined) criteria.address = filter.address;
    if (filter.topics !== undefined) criteria.topics = filter.topics;
    const getLogs = async (query: Record<string, unknown>): Promise<LogEntry[]> => {
      const logs = await this.calls.logs({ ...query, ...criteria });
      return logs.map((raw) => parseLog(raw));
    };
    // By hash: exactly that block's logs, whatever the node's canonical chain is right now.
    const byHash = (block: TrackedHead): Promise<LogEntry[]> => getLogs({ blockHash: block.hash }).catch((error: unknown) => this.#tooLarge(error, block));
    if (blocks.length <= BY_HASH_MAX) {
      const lists = await Promise.all(blocks.map(byHash));
      return lists.flat().filter((entry) => !entry.removed);
    }
    const wanted = new Map(blocks.map((block) => [block.number, block.hash]));
    let from = blocks[0]!.number;
    let to = from;
    for (const block of blocks) {
      if (block.number < from) from = block.number;
      if (block.number > to) to = block.number;
    }
    let logs: LogEntry[];
    try {
      logs = await getLogs({ fromBlock: `0x${from.toString(16)}`, toBlock: `0x${to.toString(16)}` });
    } catch (error) {
      if (!isAnswerTooLarge(error) && !isLogsRangeRefused(error)) throw error;
      // The range's logs are over limits.maxAnswerBytes together, or more than the node serves at
      // once (reth refuses over 20,000): block by block, one at a time.
      const out: LogEntry[] = [];
      for (const block of blocks) out.push(...(await byHash(block)));
      return out.filter((entry) => !entry.removed);
    }
    const out: LogEntry[] = [];
    for (const entry of logs) {
      const hash = wanted.get(entry.blockNumber);
      if (hash === undefined || entry.removed) continue;
      // The node answered from another branch than the one being delivered: try again later.
      if (hash !== entry.blockHash) throw new Error(`chain moved during eth_getLogs: block ${entry.blockNumber} is ${entry.blockHash}, expected ${hash}`);
      out.push(entry);
    }
    return out;
  }

  /**
   * One block's logs over limits.maxAnswerBytes (no node can send them: the answer closes the
   * socket it comes on), or more than the node serves in one answer: asking again, as a failed step
   * is, looped for good, closing a call socket each second. Bounded as a replay is: the live logs
   * held for the block stand, the rest are skipped, counted and logged. Other errors are the caller's.
   */
  #tooLarge(error: unknown, block: TrackedHead): LogEntry[] {
    const refused = isLogsRangeRefused(error);
    if (!isAnswerTooLarge(error) && !refused) throw error;
    this.deps.telemetry.replayTruncated('logs');
    this.deps.warnings.warn(
      { upstream: this.upstream.name, filter: this.spec.fingerprint, block: Number(block.number), ...(refused && { error: (error as Error).message }) },
      refused
        ? "a block's logs are more than the node serves in one answer: the ones not received live are skipped"
        : "a block's logs are over limits.maxAnswerBytes: the ones not received live are skipped",
    );
    return [];
  }

  /** Publishes the entries not sent before; returns how many of them are not of block `live`. */
  #deliver(group: Group, entries: LogEntry[], live?: string): number {
    const book = group.logBook!;
    let others = 0;
    for (const entry of entries) {
      if (book.accept(entry) === null) continue;
      group.publish(serializeLog(entry));
      if (entry.blockHash !== live) others++;
    }
    return others;
  }

  #account(group: Group, result: AdvanceResult<TrackedHead>): void {
    // A jump of a group whose clients all left as it was made is no client's.
    if (result.truncated && group.size > 0) {
      this.deps.telemetry.replayTruncated('logs');
      this.deps.warnings.warn({ upstream: this.upstream.name, filter: this.spec.fingerprint }, 'replay bound hit: logs stream jumped to the head');
    }
  }

  #prune(): void {
    for (const [hash, block] of this.#pending) {
      if (block.number + PENDING_WINDOW < this.#newest) this.#pending.delete(hash);
    }
  }
}
