/**
 * What a polled filter has handed its client so far, kept so that a filter evmux makes again on
 * another node (its node went down, or came back without it) hands over exactly the rest: no log
 * or block hash twice, none left out.
 *
 * A node's filter answers a poll with what arrived in blocks after its previous poll, up to the
 * node's head at the time. evmux knew a head of that node before it sent the poll, and the node's
 * own head was at least that, so once the answer is in, everything in blocks up to that head has
 * been handed over (`covered`). What the answer held in blocks past it is remembered by key.
 *
 * After a move the replay hands over what lies between `covered` and the new node's head when its
 * filter was made (`replayed`). It starts REORG_DEPTH blocks below `covered`, leaving out what was
 * handed over by key: a reorg while the filter's node was away may have replaced blocks already
 * covered, and the new blocks' logs are news to the client. The new filter may report some of the
 * same blocks again (it was made before that head was read; anvil's first answer repeats a past
 * `fromBlock`; the new node may be behind the old one): its answers drop those until one of them
 * covers the replayed head.
 */

export type FilterKind = 'logs' | 'blocks' | 'pending';

/**
 * How far below `covered` a replay looks for blocks a reorg replaced while the filter's node was
 * away. Reorgs on Ethereum since the merge are one or two blocks deep.
 */
export const REORG_DEPTH = 12n;

/** The most block hashes a block filter's cursor remembers: many polls' worth, past REORG_DEPTH. */
const REMEMBERED_HASHES = 256;

/**
 * The most log keys a logs filter's cursor remembers. A filter matching hundreds of logs a block
 * remembers fewer than REORG_DEPTH blocks' worth, and its replay starts above the forgotten ones.
 */
export const REMEMBERED_LOGS = 2048;

export interface FilterCursor {
  /** Blocks up to here have been handed over in full. */
  readonly covered: bigint;
  /** Where a replay starts: up to REORG_DEPTH blocks below `covered`, as far as what was handed over is known. */
  readonly replayFrom: bigint;
  /**
   * One poll's answer, polled with `headAtSend` the node's known head when it was sent: what the
   * client gets of it (the items the replay already handed over are left out), recorded as handed over.
   */
  answered(items: readonly unknown[], headAtSend: bigint): unknown[];
  /** What the replay after a move hands over: `items` without those handed over already. */
  unsent(items: readonly unknown[]): unknown[];
  /** The replay handed over `items`, everything up to `through`; the new filter's answers are checked against it. */
  replayed(items: readonly unknown[], through: bigint): void;
}

/** A cursor for a filter of `kind` made when its node's known head was `head` (-1: unknown). */
export function filterCursor(kind: FilterKind, head: bigint): FilterCursor | undefined {
  if (kind === 'logs') return new LogsCursor(head);
  if (kind === 'blocks') return new BlocksCursor(head);
  // Pending transactions are not replayed: a new filter starts from what is pending then.
  return undefined;
}

interface LogFields {
  blockHash?: unknown;
  blockNumber?: unknown;
  logIndex?: unknown;
  removed?: unknown;
}

class LogsCursor implements FilterCursor {
  #covered: bigint;
  /** keys of logs handed over in the last REORG_DEPTH blocks up to `covered` and past it, with their block numbers */
  readonly #handed = new Map<string, bigint>();
  /** the lowest block whose handed-over logs are all in `#handed` */
  #knownFrom: bigint;
  /** after a move: logs of blocks up to here came in the replay */
  #replayedThrough: bigint | undefined;

  constructor(head: bigint) {
    this.#covered = head;
    this.#knownFrom = head + 1n;
  }

  get covered(): bigint {
    return this.#covered;
  }

  get replayFrom(): bigint {
    const deepest = this.#covered - REORG_DEPTH + 1n;
    const from = deepest > this.#knownFrom ? deepest : this.#knownFrom;
    return from > 0n ? from : 0n;
  }

  answered(items: readonly unknown[], headAtSend: bigint): unknown[] {
    const kept: unknown[] = [];
    for (const item of items) {
      const log = item as LogFields;
      const key = logKey(log);
      // A removed log is news whatever was handed over: a reorg took its block away.
      if (log.removed === true) {
        if (key !== undefined) this.#handed.delete(key);
        kept.push(item);
        continue;
      }
      const block = quantity(log.blockNumber);
      if (key !== undefined && this.#handed.has(key)) continue;
      if (block !== undefined && this.#replayedThrough !== undefined && block <= this.#replayedThrough) continue;
      this.#remember(key, block);
      kept.push(item);
    }
    if (this.#replayedThrough !== undefined && headAtSend >= this.#replayedThrough) this.#replayedThrough = undefined;
    this.#cover(headAtSend);
    return kept;
  }

  unsent(items: readonly unknown[]): unknown[] {
    return items.filter((item) => {
      const log = item as LogFields;
      const key = logKey(log);
      return log.removed !== true && (key === undefined || !this.#handed.has(key));
    });
  }

  replayed(items: readonly unknown[], through: bigint): void {
    for (const item of items) {
      const log = item as LogFields;
      this.#remember(logKey(log), quantity(log.blockNumber));
    }
    this.#replayedThrough = through > this.#covered ? through : this.#covered;
    this.#cover(through);
  }

  #remember(key: string | undefined, block: bigint | undefined): void {
    if (key === undefined || block === undefined || block <= this.#covered - REORG_DEPTH) return;
    this.#handed.set(key, block);
    // Logs come in block order: the first ones in the map are of the lowest blocks.
    for (const [oldest, oldestBlock] of this.#handed) {
      if (this.#handed.size <= REMEMBERED_LOGS) break;
      this.#handed.delete(oldest);
      if (oldestBlock >= this.#knownFrom) this.#knownFrom = oldestBlock + 1n;
    }
  }

  #cover(head: bigint): void {
    if (head <= this.#covered) return;
    this.#covered = head;
    const floor = head - REORG_DEPTH;
    for (const [key, block] of this.#handed) if (block <= floor) this.#handed.delete(key);
  }
}

class BlocksCursor implements FilterCursor {
  #covered: bigint;
  /** hashes handed over lately, oldest first; a block filter's answers carry no block numbers */
  readonly #recent = new Set<string>();
  /** the block after the head the filter was made at: none below it is news */
  readonly #madeAfter: bigint;

  constructor(head: bigint) {
    this.#covered = head;
    this.#madeAfter = head + 1n;
  }

  get covered(): bigint {
    return this.#covered;
  }

  get replayFrom(): bigint {
    const deepest = this.#covered - REORG_DEPTH + 1n;
    const from = deepest > this.#madeAfter ? deepest : this.#madeAfter;
    return from > 0n ? from : 0n;
  }

  answered(items: readonly unknown[], headAtSend: bigint): unknown[] {
    const kept = this.unsent(items);
    this.#remember(kept);
    if (headAtSend > this.#covered) this.#covered = headAtSend;
    return kept;
  }

  unsent(items: readonly unknown[]): unknown[] {
    return items.filter((item) => typeof item !== 'string' || !this.#recent.has(item.toLowerCase()));
  }

  replayed(items: readonly unknown[], through: bigint): void {
    this.#remember(items);
    if (through > this.#covered) this.#covered = through;
  }

  #remember(items: readonly unknown[]): void {
    for (const item of items) {
      if (typeof item !== 'string') continue;
      const hash = item.toLowerCase();
      this.#recent.delete(hash);
      this.#recent.add(hash);
    }
    for (const hash of this.#recent) {
      if (this.#recent.size <= REMEMBERED_HASHES) break;
      this.#recent.delete(hash);
    }
  }
}

function logKey(log: LogFields): string | undefined {
  const { blockHash, logIndex } = log;
  if (typeof blockHash !== 'string' || typeof logIndex !== 'string') return undefined;
  return `${blockHash.toLowerCase()}:${logIndex.toLowerCase()}`;
}

/** A hex quantity as a bigint; undefined for anything else. */
export function quantity(value: unknown): bigint | undefined {
  if (typeof value !== 'string' || !/^0x[0-9a-fA-F]{1,64}$/.test(value)) return undefined;
  return BigInt(value);
}
