/**
 * What one group of logs subscriptions has been sent, per block hash, so each log goes out once
 * with `removed: false` and, if its block is orphaned, once more with `removed: true`; a block that
 * becomes canonical again has its logs delivered again. Failover replays and upstreams that repeat
 * themselves (or announce removals of logs we never sent) are absorbed here.
 *
 * Memory is bounded by the number of blocks remembered; the oldest blocks (by number) go first.
 * A removal for a forgotten block is dropped, which is the price of that bound.
 */

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
}

interface BlockRecord {
  number: bigint;
  logs: Map<number, Sent>;
  /** how many of `logs` are live, so lastBlockNumber need not look inside */
  live: number;
}

export class LogBook {
  readonly #capacityBlocks: number;
  #blocks = new Map<string, BlockRecord>();

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

  /** true if (blockHash, logIndex) was delivered with removed:false and not yet removed */
  isLive(blockHash: string, logIndex: number): boolean {
    return this.#blocks.get(blockHash)?.logs.get(logIndex)?.live ?? false;
  }

  /**
   * Decide for one incoming log: returns the log to deliver or null (duplicate, removal of
   * something never delivered, or already removed). Records it.
   */
  accept(entry: LogEntry): LogEntry | null {
    const block = this.#blocks.get(entry.blockHash);
    const sent = block?.logs.get(entry.logIndex);
    if (entry.removed) {
      if (block === undefined || sent === undefined || !sent.live) return null;
      sent.live = false;
      block.live--;
      return asRemoved(entry);
    }
    if (sent?.live === true) return null;
    const record = block ?? this.#addBlock(entry.blockHash, entry.blockNumber);
    if (sent === undefined) record.logs.set(entry.logIndex, { entry, live: true });
    else {
      sent.entry = entry;
      sent.live = true;
    }
    record.live++;
    return entry;
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

  clone(): LogBook {
    const copy = new LogBook({ capacityBlocks: this.#capacityBlocks });
    for (const [hash, block] of this.#blocks) {
      const logs = new Map<number, Sent>();
      for (const [index, sent] of block.logs) logs.set(index, { ...sent });
      copy.#blocks.set(hash, { number: block.number, logs, live: block.live });
    }
    return copy;
  }

  #addBlock(hash: string, number: bigint): BlockRecord {
    const record: BlockRecord = { number, logs: new Map(), live: 0 };
    this.#blocks.set(hash, record);
    if (this.#blocks.size > this.#capacityBlocks) this.#evictOldest();
    return record;
  }

  /** Lowest number goes; on a tie (a reorg) the one recorded first. A linear scan of ≤ capacity. */
  #evictOldest(): void {
    let oldestHash: string | undefined;
    let oldestNumber: bigint | undefined;
    for (const [hash, block] of this.#blocks) {
      if (oldestNumber === undefined || block.number < oldestNumber) {
        oldestHash = hash;
        oldestNumber = block.number;
      }
    }
    if (oldestHash !== undefined) this.#blocks.delete(oldestHash);
  }
}

function asRemoved(entry: LogEntry): LogEntry {
  if (entry.removed && entry.raw['removed'] === true) return entry;
  return { ...entry, removed: true, raw: { ...entry.raw, removed: true } };
}

function byPosition(a: LogEntry, b: LogEntry): number {
  if (a.blockNumber !== b.blockNumber) return a.blockNumber < b.blockNumber ? -1 : 1;
  return a.logIndex - b.logIndex;
}

const HASH_RE = /^0x[0-9a-fA-F]{64}$/;
const QUANTITY_RE = /^0x[0-9a-fA-F]{1,64}$/;

/**
 * Validates the fields the book relies on and returns the entry (blockHash lower-cased, raw kept
 * as received). A missing `removed` reads as false, as some nodes omit it on fresh logs. Throws an
 * Error naming the bad field, e.g. a pending log with a null blockHash.
 */
export function parseLog(raw: Record<string, unknown>): LogEntry {
  const { blockHash, blockNumber, logIndex, removed } = raw;
  if (typeof blockHash !== 'string' || !HASH_RE.test(blockHash)) {
    throw new Error(`invalid log: blockHash must be a 32-byte 0x hex string, got ${show(blockHash)}`);
  }
  if (typeof blockNumber !== 'string' || !QUANTITY_RE.test(blockNumber)) {
    throw new Error(`invalid log: blockNumber must be a 0x hex quantity, got ${show(blockNumber)}`);
  }
  if (typeof logIndex !== 'string' || !QUANTITY_RE.test(logIndex) || BigInt(logIndex) > Number.MAX_SAFE_INTEGER) {
    throw new Error(`invalid log: logIndex must be a 0x hex quantity, got ${show(logIndex)}`);
  }
  if (removed !== undefined && typeof removed !== 'boolean') {
    throw new Error(`invalid log: removed must be a boolean, got ${show(removed)}`);
  }
  return {
    blockHash: blockHash.toLowerCase(),
    blockNumber: BigInt(blockNumber),
    logIndex: Number(logIndex),
    removed: removed ?? false,
    raw,
  };
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
