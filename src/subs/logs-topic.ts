/**
 * logs for one upstream and one filter. Live logs come from the node's logs subscription and are
 * held until their block is on the group's delivered chain (the node's newHeads stream drives the
 * cursor), so delivery follows block order. Gaps, reorgs and failovers are filled with eth_getLogs
 * over the blocks the cursor delivers; logs of orphaned blocks go out again with removed: true
 * before the new branch's logs. The log book makes every log go out once.
 */
import type { TrackedHead } from '../upstream/head.js';
import { ChainCursor, type AdvanceResult, type HeadSource } from './chain-cursor.js';
import type { Group } from './group.js';
import type { HeadFeed, HeadListener } from './head-feed.js';
import { LogBook, parseLog, type LogEntry } from './log-book.js';
import type { StreamUser, UpstreamStream } from './upstream-stream.js';
import { Topic, type GroupState } from './topic.js';

/** Live logs kept for blocks this many below the newest head seen. */
const PENDING_WINDOW = 64n;

const logJson = new WeakMap<Record<string, unknown>, string>();

function serializeLog(entry: LogEntry): string {
  let json = logJson.get(entry.raw);
  if (json === undefined) {
    json = JSON.stringify(entry.raw);
    logJson.set(entry.raw, json);
  }
  return json;
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
  readonly #source: HeadSource<TrackedHead> = { byHash: (hash) => this.fetchHead('eth_getBlockByHash', hash) };

  attach(): void {
    this.#feed = this.deps.headFeed(this.upstream);
    this.#feed.add(this);
    this.#stream = this.deps.registry.get(this.upstream, this.spec.fingerprint, 'logs', this.spec.upstreamParams);
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

  protected freshState(): GroupState {
    return { cursor: new ChainCursor<TrackedHead>({ capacity: this.deps.historyBlocks }), logBook: new LogBook({ capacityBlocks: this.deps.historyBlocks }) };
  }

  onHead(head: TrackedHead): void {
    if (head.number > this.#newest) this.#newest = head.number;
    this.enqueue(async () => {
      for (const group of [...this.groups]) await this.#advance(group, head, false);
      this.#prune();
    });
  }

  /** A live log from the node's logs subscription. */
  onResult(result: unknown): void {
    let entry: LogEntry;
    try {
      entry = parseLog(result as Record<string, unknown>);
    } catch (error) {
      this.deps.logger.warn({ upstream: this.upstream.name, err: (error as Error).message }, 'ignoring malformed log notification');
      return;
    }
    this.enqueue(() => this.#onLog(entry));
  }

  onResumed(): void {
    for (const group of this.groups) this.scheduleCatchUp(group);
  }

  protected async catchUp(group: Group): Promise<void> {
    const latest = await this.fetchHead('eth_getBlockByNumber', 'latest');
    if (latest === null) throw new Error('node returned no latest block');
    // Logs of the last block delivered before the move may not have arrived yet: look again.
    await this.#advance(group, latest, true, group.cursor!.last);
  }

  async #onLog(entry: LogEntry): Promise<void> {
    if (!entry.removed) {
      let block = this.#pending.get(entry.blockHash);
      if (block === undefined) {
        block = { number: entry.blockNumber, logs: [] };
        this.#pending.set(entry.blockHash, block);
      }
      block.logs.push(entry);
    }
    for (const group of [...this.groups]) {
      const cursor = group.cursor!;
      const tip = cursor.last;
      if (entry.removed || cursor.has(entry.blockHash)) {
        // Its block is already delivered (the log came after the head), or the node retracts it.
        this.#deliver(group, [entry]);
      } else if (tip !== undefined && entry.blockNumber <= tip.number) {
        // A block at a delivered height that is not on the delivered chain: the node reorged
        // before telling us through newHeads. Resolve the reorg first so removals go out first.
        const head = await this.#source.byHash(entry.blockHash);
        if (head !== null) await this.#advance(group, head, false);
      }
      // Otherwise the block is ahead of the group's chain: it goes out when its head arrives.
    }
  }

  async #advance(group: Group, head: TrackedHead, replay: boolean, recheck?: TrackedHead): Promise<void> {
    const cursor = group.cursor!;
    const result = await cursor.advance(head, this.#source, this.bounds());
    this.#account(result);
    if (result.orphaned.length > 0) {
      for (const removed of group.logBook!.orphan(result.orphaned.map((orphan) => orphan.hash))) group.publish(serializeLog(removed));
    }
    const blocks = recheck !== undefined && cursor.has(recheck.hash) ? [recheck, ...result.deliver] : result.deliver;
    if (blocks.length === 0) return;
    const simple = !replay && result.orphaned.length === 0 && result.deliver.length === 1;
    const fetched = simple ? [] : await this.#fetchLogs(blocks);
    const wanted = new Set(blocks.map((block) => block.hash));
    const entries: LogEntry[] = [...fetched];
    for (const block of blocks) entries.push(...(this.#pending.get(block.hash)?.logs ?? []));
    const delivered = this.#deliver(group, entries.filter((entry) => wanted.has(entry.blockHash)).sort(byPosition));
    if (!simple && delivered > 0) this.deps.telemetry.replayed('logs', delivered);
  }

  #deliver(group: Group, entries: LogEntry[]): number {
    let count = 0;
    for (const entry of entries) {
      const out = group.logBook!.accept(entry);
      if (out === null) continue;
      group.publish(serializeLog(out));
      count++;
    }
    return count;
  }

  async #fetchLogs(blocks: TrackedHead[]): Promise<LogEntry[]> {
    let from = blocks[0]!.number;
    let to = from;
    for (const block of blocks) {
      if (block.number < from) from = block.number;
      if (block.number > to) to = block.number;
    }
    const filter = this.spec.filter ?? {};
    const query: Record<string, unknown> = { fromBlock: `0x${from.toString(16)}`, toBlock: `0x${to.toString(16)}` };
    if (filter.address !== undefined) query.address = filter.address;
    if (filter.topics !== undefined) query.topics = filter.topics;
    const logs = await this.upstream.call<Array<Record<string, unknown>>>('eth_getLogs', [query], this.deps.requestTimeoutMs);
    return logs.map((raw) => parseLog(raw));
  }

  #account(result: AdvanceResult<TrackedHead>): void {
    if (result.truncated) {
      this.deps.telemetry.replayTruncated('logs');
      this.deps.logger.warn({ upstream: this.upstream.name, filter: this.spec.fingerprint }, 'replay bound hit: logs stream jumped to the head');
    }
  }

  #prune(): void {
    for (const [hash, block] of this.#pending) {
      if (block.number + PENDING_WINDOW < this.#newest) this.#pending.delete(hash);
    }
  }
}
