/**
 * What a polled filter has handed its client so far, kept so that a filter evmux makes again on
 * another node (its node went down, or came back without it) hands over exactly the rest: no log
 * or block hash twice, none left out.
 *
 * A node's filter answers a poll with what arrived in blocks after its previous poll, up to the
 * node's head at the time. evmux knew a head of that node before it sent the poll, and the node's
 * own head was at least that, so once the answer is in, everything in blocks up to that head has
 * been handed over (`covered`). What the answer held in blocks past it is remembered: a logs
 * filter's by block hash (a node's filter hands over a block's logs all at once), a block filter's
 * by hash.
 *
 * After a move the replay hands over what lies between `covered` and the new node's head when its
 * filter was made (`replayed`). It starts REORG_DEPTH blocks below `covered`, leaving out what was
 * handed over: a reorg while the filter's node was away may have replaced blocks already
 * covered, and the new blocks' logs are news to the client. The new filter may report some of the
 * same blocks again (it was made before that head was read; anvil's first answer repeats a past
 * `fromBlock`; the new node may be behind the old one): its answers drop those until one of them
 * covers the replayed head, by block hash where the blocks handed over are remembered, and by
 * number below that. A new node behind the old one may yet take another branch than the blocks
 * the old one handed over, and those of the new branch come.
 */
import { quantity } from '../jsonrpc/hex.js';

export type FilterKind = 'logs' | 'blocks' | 'pending';

/**
 * How far below `covered` a replay looks for blocks a reorg replaced while the filter's node was
 * away. Reorgs on Ethereum since the merge are one or two blocks deep.
 */
export const REORG_DEPTH = 12n;

/** The most block hashes a block filter's cursor remembers: many polls' worth, past REORG_DEPTH. */
const REMEMBERED_HASHES = 256;

/**
 * The most blocks a logs filter's cursor remembers having handed over the logs of. Past it (a node
 * whose head evmux has not learned for that long), the oldest are forgotten and a replay starts
 * above them.
 */
export const REMEMBERED_BLOCKS = 64;

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
  /**
   * Whether the filter may be made again on a node whose head is `head`: a block filter not on a
   * node behind where its replay starts (the block it was first made at, or REORG_DEPTH blocks
   * below what it covered). That node's new filter would report the blocks in between as it
   * catches up, and a block filter's answers are bare hashes, with no number to tell them from the
   * blocks after it: only the last REMEMBERED_HASHES hashes handed over are left out, and each
   * repeat let through pushes out a newer one. (A logs filter's answers carry their block numbers.)
   */
  canMoveTo(head: bigint): boolean;
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
  removed?: unknown;
}

/**
 * A node's filter answers with every matching log of a block at once, so what was handed over is
 * kept by block: the blocks (by hash) whose logs were, in the last REORG_DEPTH blocks up to
 * `covered` and past it. A few dozen bytes a block, however many logs it had.
 */
class LogsCursor implements FilterCursor {
  #covered: bigint;
  /** blocks whose logs were handed over, by the first 16 hex digits of their hash, with their numbers */
  readonly #handed = new Map<string, bigint>();
  /** the lowest block whose logs, if handed over, are known to have been */
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
    return replayStart(this.#covered, this.#knownFrom);
  }

  answered(items: readonly unknown[], headAtSend: bigint): unknown[] {
    const kept: unknown[] = [];
    const blocks = new Map<string, bigint>();
    for (const item of items) {
      const log = item as LogFields;
      const block = blockKey(log);
      // A removed log is news whatever was handed over: a reorg took its block away.
      if (log.removed === true) {
        if (block !== undefined) this.#handed.delete(block);
        kept.push(item);
        continue;
      }
      const number = quantity(log.blockNumber);
      if (block !== undefined && this.#handed.has(block)) continue;
      // Replayed, or handed over before the move, in a block too old to be remembered by hash. From
      // replayFrom on, every block handed over is remembered: a block there not known by hash is
      // a new branch's (a reorg while the filter's node was away, or since), news to the client.
      if (number !== undefined && this.#replayedThrough !== undefined && number <= this.#replayedThrough && number < this.replayFrom) continue;
      if (block !== undefined && number !== undefined) blocks.set(block, number);
      kept.push(item);
    }
    for (const [block, number] of blocks) this.#remember(block, number);
    if (this.#replayedThrough !== undefined && headAtSend >= this.#replayedThrough) this.#replayedThrough = undefined;
    this.#cover(headAtSend);
    return kept;
  }

  unsent(items: readonly unknown[]): unknown[] {
    return items.filter((item) => {
      const log = item as LogFields;
      const block = blockKey(log);
      return log.removed !== true && (block === undefined || !this.#handed.has(block));
    });
  }

  canMoveTo(): boolean {
    return true;
  }

  replayed(items: readonly unknown[], through: bigint): void {
    for (const item of items) {
      const log = item as LogFields;
      const block = blockKey(log);
      const number = quantity(log.blockNumber);
      if (block !== undefined && number !== undefined) this.#remember(block, number);
    }
    this.#replayedThrough = through > this.#covered ? through : this.#covered;
    this.#cover(through);
  }

  #remember(block: string, number: bigint): void {
    if (number <= this.#covered - REORG_DEPTH) return;
    this.#handed.set(block, number);
    for (const [oldest, oldestNumber] of this.#handed) {
      if (this.#handed.size <= REMEMBERED_BLOCKS) break;
      this.#handed.delete(oldest);
      if (oldestNumber >= this.#knownFrom) this.#knownFrom = oldestNumber + 1n;
    }
  }

  #cover(head: bigint): void {
    if (head <= this.#covered) return;
    this.#covered = head;
    const floor = head - REORG_DEPTH;
    for (const [block, number] of this.#handed) if (number <= floor) this.#handed.delete(block);
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
    return replayStart(this.#covered, this.#madeAfter);
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

  canMoveTo(head: bigint): boolean {
    return head >= this.replayFrom - 1n;
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

/** REORG_DEPTH blocks below `covered`, but not below `lowest`, nor below genesis. */
function replayStart(covered: bigint, lowest: bigint): bigint {
  const deepest = covered - REORG_DEPTH + 1n;
  const from = deepest > lowest ? deepest : lowest;
  return from > 0n ? from : 0n;
}

/** A log's block: the first 16 hex digits of its hash, as many as tell a few dozen blocks apart. */
function blockKey(log: LogFields): string | undefined {
  const { blockHash } = log;
  return typeof blockHash === 'string' ? blockHash.slice(0, 18).toLowerCase() : undefined;
}

