/**
 * What one group of logs subscriptions has been sent, per block hash, so each log goes out once
 * with `removed: false` and, if its block is orphaned, once more with `removed: true`; a block that
 * becomes canonical again has its logs delivered again. Failover replays and upstreams that repeat
 * themselves are absorbed here.
 *
 * Memory is bounded by the number of blocks remembered; orphaned blocks go first, then the oldest
 * (by number), and blocks below the group's reorg window are forgotten (forgetBelow). A removal for a forgotten
 * block is dropped, which is the price of that bound.
 *
 * Every log sent live gets the next sequence number, so a subscription that started at sequence s
 * is known to have been sent exactly the logs numbered above s: its removals are routed by that.
 */
import { isHash, quantity } from '../jsonrpc/hex.js';

export interface LogEntry {
  /** lower-case 0x hex */
  blockHash: string;
  blockNumber: bigint;
  logIndex: number;
  removed: boolean;
  /** the log object as received (hex fields) */
  raw: Record<string, unknown>;
}

export const DEFAULT_LOG_BOOK_BLOCKS = 256;

interface Sent {
  entry: LogEntry;
  live: boolean;
  /** sequence number of the last time it was sent live */
  seq: number;
}

interface BlockRecord {
  number: bigint;
  logs: Map<number, Sent>;
  /** how many of `logs` are live, so lastBlockNumber need not look inside */
  live: number;
  /** its logs are not the group's to send: the block the stream started at (startAt) */
  withheld: boolean;
}

export class LogBook {
  readonly #capacityBlocks: number;
  #blocks = new Map<string, BlockRecord>();
  /** sequence number of the last log sent live */
  #seq = 0;
  /** live logs over all blocks */
  #live = 0;
  /** the block the stream started at, until a later one is delivered (startAt) */
  #start: { hash: string; number: bigint } | undefined;

  constructor(options: {
    /** blocks remembered @default 256 */
    capacityBlocks?: number;
  } = {}) {
    const { capacityBlocks = DEFAULT_LOG_BOOK_BLOCKS } = options;
    if (!Number.isSafeInteger(capacityBlocks) || capacityBlocks < 1) {
      throw new RangeError(`LogBook capacityBlocks must be a positive integer, got ${capacityBlocks}`);
    }
    this.#capacityBlocks = capacityBlocks;
  }

  /** Number of blocks remembered. */
  get size(): number {
    return this.#blocks.size;
  }

  /** Sequence number of the last log sent live (0: none yet). */
  get seq(): number {
    return this.#seq;
  }

  /** Number of logs sent live and not removed since. */
  get liveCount(): number {
    return this.#live;
  }

  /** When (blockHash, logIndex) was last sent live, also after its removal; undefined if unknown. */
  sentSeq(blockHash: string, logIndex: number): number | undefined {
    return this.#blocks.get(blockHash)?.logs.get(logIndex)?.seq;
  }

  /** true if (blockHash, logIndex) was delivered with removed:false and not yet removed */
  isLive(blockHash: string, logIndex: number): boolean {
    return this.#blocks.get(blockHash)?.logs.get(logIndex)?.live ?? false;
  }

  /** The logs sent live after sequence `since` and not removed since, in the order they went out. */
  liveSince(since: number): LogEntry[] {
    if (since >= this.#seq) return [];
    const sent: Sent[] = [];
    for (const block of this.#blocks.values()) {
      if (block.live === 0) continue;
      for (const log of block.logs.values()) if (log.live && log.seq > since) sent.push(log);
    }
    return sent.sort((a, b) => a.seq - b.seq).map((log) => log.entry);
  }

  /**
   * Decide for one incoming live log (removed: false; removals come from orphan()): returns it to
   * deliver, recorded as sent, or null (a duplicate, or a log of the withheld start block).
   */
  accept(entry: LogEntry): LogEntry | null {
    const block = this.#blocks.get(entry.blockHash);
    if (block?.withheld === true) return null;
    const sent = block?.logs.get(entry.logIndex);
    if (sent?.live === true) return null;
    const record = block ?? this.#addBlock(entry.blockHash, entry.blockNumber);
    const seq = ++this.#seq;
    if (sent === undefined) record.logs.set(entry.logIndex, { entry, live: true, seq });
    else {
      sent.entry = entry;
      sent.live = true;
      sent.seq = seq;
    }
    record.live++;
    this.#live++;
    return entry;
  }

  /**
   * The block a new stream starts at: the node's head as the client subscribed. Its logs that come
   * live are sent while it is the stream's newest block (it may have been mined as the client
   * subscribed). Once a later block is delivered (sealStart), they are withheld: its logs came
   * before the subscription, and sent after the later block's they would break the order, whether
   * they came late from the node or from the look again at the last blocks after a failover.
   */
  startAt(blockHash: string, number: bigint): void {
    this.#start = { hash: blockHash, number };
  }

  /** The block the stream started at (sealed or not): its logs are never fetched for it. */
  isStart(blockHash: string): boolean {
    return this.#start?.hash === blockHash || this.#blocks.get(blockHash)?.withheld === true;
  }

  /** A block after the start block was delivered: the start block's logs are withheld from now on. */
  sealStart(): void {
    if (this.#start === undefined) return;
    const { hash, number } = this.#start;
    this.#start = undefined;
    (this.#blocks.get(hash) ?? this.#addBlock(hash, number)).withheld = true;
  }

  /**
   * Blocks orphaned: returns the live logs of those blocks as removed:true entries (raw copied
   * with removed: true), ordered by block number then logIndex, and records them as removed.
   */
  orphan(blockHashes: Iterable<string>): LogEntry[] {
    const out: LogEntry[] = [];
    for (const hash of blockHashes) {
      const block = this.#blocks.get(hash);
      if (block === undefined || block.live === 0) continue;
      for (const sent of block.logs.values()) {
        if (!sent.live) continue;
        sent.live = false;
        out.push(asRemoved(sent.entry));
      }
      this.#live -= block.live;
      block.live = 0;
    }
    return out.sort(byPosition);
  }

  /** Highest block number with a delivered log still live, for replay start. */
  get lastBlockNumber(): bigint | undefined {
    let highest: bigint | undefined;
    for (const block of this.#blocks.values()) {
      if (block.live > 0 && (highest === undefined || block.number > highest)) highest = block.number;
    }
    return highest;
  }

  /**
   * A start in `other`'s numbering (a subscription there was sent the live logs numbered above
   * `since`) restated in this book's: the number above which this book's live logs are exactly
   * those. Undefined when they are not a tail of this book's live logs: then no start here sends
   * that subscription the removals it is due and no others.
   */
  restate(other: LogBook, since: number): number | undefined {
    let count = 0;
    let lowest = Number.POSITIVE_INFINITY;
    for (const [hash, block] of other.#blocks) {
      if (block.live === 0) continue;
      for (const [index, sent] of block.logs) {
        if (!sent.live || sent.seq <= since) continue;
        const mine = this.#blocks.get(hash)?.logs.get(index);
        if (mine?.live !== true) return undefined;
        count++;
        if (mine.seq < lowest) lowest = mine.seq;
      }
    }
    // Sent nothing still live: it is due the removals of what this book sends from now on.
    if (count === 0) return this.#seq;
    let tail = 0;
    for (const block of this.#blocks.values()) {
      if (block.live === 0) continue;
      for (const sent of block.logs.values()) if (sent.live && sent.seq >= lowest) tail++;
    }
    return tail === count ? lowest - 1 : undefined;
  }

  /**
   * Forget blocks below `number`: they left the reorg window, so no removal can be due for them
   * any more, and keeping them would keep apart groups whose histories differ only there.
   */
  forgetBelow(number: bigint): void {
    for (const [hash, block] of this.#blocks) {
      if (block.number >= number) continue;
      this.#live -= block.live;
      this.#blocks.delete(hash);
    }
  }

  /** A copy with the same sequence numbers, so subscriptions moved with it keep their start. */
  clone(): LogBook {
    const copy = new LogBook({ capacityBlocks: this.#capacityBlocks });
    for (const [hash, block] of this.#blocks) {
      const logs = new Map<number, Sent>();
      for (const [index, sent] of block.logs) logs.set(index, { ...sent });
      copy.#blocks.set(hash, { number: block.number, logs, live: block.live, withheld: block.withheld });
    }
    copy.#seq = this.#seq;
    copy.#live = this.#live;
    copy.#start = this.#start;
    return copy;
  }

  #addBlock(hash: string, number: bigint): BlockRecord {
    // Room is made first, so the block being recorded always stays (and the live count with it).
    if (this.#blocks.size >= this.#capacityBlocks) this.#evictOldest();
    const record: BlockRecord = { number, logs: new Map(), live: 0, withheld: false };
    this.#blocks.set(hash, record);
    return record;
  }

  /**
   * A block with nothing live goes first (orphaned: no removal can be due for it, and a block that
   * comes back is sent again all the same); else the lowest number, on a tie (a reorg) the one
   * recorded first. Orphaned blocks counted like live ones made a window with reorgs in it shorter
   * than historyBlocks: the lowest blocks a later deep reorg orphaned were forgotten, and their logs
   * never removed. A linear scan of ≤ capacity.
   */
  #evictOldest(): void {
    let oldest: [string, BlockRecord] | undefined;
    let oldestEmpty: [string, BlockRecord] | undefined;
    for (const entry of this.#blocks) {
      const block = entry[1];
      if (block.live === 0 && !block.withheld && (oldestEmpty === undefined || block.number < oldestEmpty[1].number)) oldestEmpty = entry;
      if (oldest === undefined || block.number < oldest[1].number) oldest = entry;
    }
    const [hash, block] = oldestEmpty ?? oldest ?? [];
    if (hash === undefined) return;
    this.#live -= block!.live;
    this.#blocks.delete(hash);
  }
}

function asRemoved(entry: LogEntry): LogEntry {
  return { ...entry, removed: true, raw: { ...entry.raw, removed: true } };
}

function byPosition(a: LogEntry, b: LogEntry): number {
  if (a.blockNumber !== b.blockNumber) return a.blockNumber < b.blockNumber ? -1 : 1;
  return a.logIndex - b.logIndex;
}


/**
 * Validates the fields the book relies on and returns the entry (blockHash lower-cased, raw kept
 * as received). A missing `removed` reads as false, as some nodes omit it on fresh logs. Throws an
 * Error naming the bad field, e.g. a pending log with a null blockHash.
 */
export function parseLog(raw: Record<string, unknown>): LogEntry {
  const { blockHash, blockNumber, logIndex, removed } = raw;
  if (!isHash(blockHash)) {
    throw new Error(`invalid log: blockHash must be a 32-byte 0x hex string, got ${show(blockHash)}`);
  }
  const number = quantity(blockNumber);
  if (number === undefined) {
    throw new Error(`invalid log: blockNumber must be a 0x hex quantity, got ${show(blockNumber)}`);
  }
  const index = quantity(logIndex);
  if (index === undefined || index > Number.MAX_SAFE_INTEGER) {
    throw new Error(`invalid log: logIndex must be a 0x hex quantity, got ${show(logIndex)}`);
  }
  if (removed !== undefined && typeof removed !== 'boolean') {
    throw new Error(`invalid log: removed must be a boolean, got ${show(removed)}`);
  }
  return {
    blockHash: blockHash.toLowerCase(),
    blockNumber: number,
    logIndex: Number(index),
    removed: removed ?? false,
    raw,
  };
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
