/**
 * The delivered-head history of one group of subscriptions, and the step that turns "the upstream
 * in use says its head is H" into what the group must be sent so the newHeads guarantees hold
 * across gaps, reorgs and failover: every delivered head links to one delivered before it, no
 * height is skipped, no hash is delivered twice while it stays canonical, and a reorg is delivered
 * from the fork point. A head below the delivered tip never takes the stream back down: it is the
 * node in use being behind, waited for until its head reaches the tip's height; so is a head at the
 * tip's height on a branch the stream already left (it descends from a block a delivered reorg
 * orphaned). Past the replay bounds the cursor jumps to the head instead of stalling; the delivered
 * heads the node no longer has are listed as orphaned all the same, so their logs can be undone.
 *
 * Pure apart from the injected HeadSource: no timers, no sockets, no logging. The caller logs and
 * counts truncated steps.
 */
import { performance } from 'node:perf_hooks';

/** Hashes are lower-case 0x hex; the cursor compares them as strings. */
export interface Head {
  number: bigint;
  hash: string;
  parentHash: string;
}

export interface HeadSource<H extends Head> {
  /** a header the source already holds, without a call; undefined if it would have to ask */
  known(hash: string): H | undefined;
  /** fetch a header by hash from the upstream in use; null if unknown */
  byHash(hash: string): Promise<H | null>;
  /** fetch the header at this height on the upstream's canonical chain; null if it has none */
  byNumber(number: bigint): Promise<H | null>;
}

export interface AdvanceBounds {
  /** max blocks fetched/delivered in one step @default 128 */
  maxReplayBlocks?: number;
  /** give up walking after this deadline (performance.now()) */
  deadline: number;
  /**
   * true once nobody waits for the step (its clients moved to another node): the walk stops and
   * the step delivers nothing, rather than walk on to the deadline and jump for no one
   */
  abandoned?: () => boolean;
}

export interface AdvanceResult<H> {
  /** heads to deliver, ascending by number, parent-linked, starting right after the fork point */
  deliver: H[];
  /**
   * delivered heads that left the canonical chain, descending by number (newest first). On a
   * truncated step, those proven off the node's chain (see #jump).
   */
  orphaned: H[];
  /** true when bounds were hit: the cursor jumped to the new head (deliver = [head]) */
  truncated: boolean;
}

export const DEFAULT_CURSOR_CAPACITY = 256;
/** Heights of a gap asked for at once (gapHeaders); the source's own concurrency limits them further. */
const GAP_BATCH = 128;
export const DEFAULT_MAX_REPLAY_BLOCKS = 128;
/**
 * Steps in a row that may fail on a parent the node does not have before the cursor jumps. A
 * backend of a provider's load balancer a moment behind the one that sent the head answers null
 * once: a jump then would skip blocks that exist, and a step tried again (the caller catches up)
 * links them. A head whose parent nobody has (a node on a fork of its own) is never delivered
 * while the node's next heads link.
 */
export const UNLINKED_STEPS_BEFORE_JUMP = 3;

/** A step found a parent the node does not have (yet): try it again later. */
export class UnknownParentError extends Error {
  override name = 'UnknownParentError';
}

/** A computed step: the result plus how many buffered heads (from the oldest) survive it. */
interface Plan<H> {
  result: AdvanceResult<H>;
  keep: number;
}

/**
 * A step computed by plan() and not yet applied. Callers that must do more work before the step
 * counts as delivered (fetch the logs of its blocks) commit it only once that work succeeded.
 */
export interface PlannedStep<H> {
  readonly result: AdvanceResult<H>;
  readonly keep: number;
  /** the cursor's version the plan was computed against */
  readonly version: number;
}

export class ChainCursor<H extends Head> {
  readonly #capacity: number;
  /** The delivered canonical chain, ascending and contiguous: #chain[i].number = first + i. */
  #chain: H[] = [];
  #byHash = new Map<string, H>();
  /** hashes of heads that delivered reorgs orphaned, oldest first; at most capacity of them */
  #orphans = new Set<string>();
  #busy = false;
  /** bumped by every applied step, so a stale plan is refused */
  #version = 0;
  /** heads delivered since the stream started (or last started over) were dropped for capacity */
  #forgotten = false;
  /** steps in a row that failed on a parent the node did not have */
  #unlinkedSteps = 0;

  constructor(options: {
    /** delivered heads kept @default 256 */
    capacity?: number;
  } = {}) {
    const { capacity = DEFAULT_CURSOR_CAPACITY } = options;
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new RangeError(`ChainCursor capacity must be a positive integer, got ${capacity}`);
    }
    this.#capacity = capacity;
  }

  get last(): H | undefined {
    return this.#chain.at(-1);
  }

  /** Number of delivered heads remembered. */
  get size(): number {
    return this.#chain.length;
  }

  /** True if the hash was delivered and is still on the delivered chain (orphans are forgotten). */
  has(hash: string): boolean {
    return this.#byHash.has(hash);
  }

  /**
   * Compute and apply (mutates the buffer) the step to `head`. Nothing is changed until every
   * fetch has succeeded, so a throwing source leaves the cursor as it was. Calls must be
   * serialized by the caller; overlapping calls throw.
   */
  async advance(head: H, source: HeadSource<H>, bounds: AdvanceBounds): Promise<AdvanceResult<H>> {
    const step = await this.plan(head, source, bounds);
    this.commit(step);
    return step.result;
  }

  /** Compute the step to `head` without changing anything; apply it with commit(). */
  async plan(head: H, source: HeadSource<H>, bounds: AdvanceBounds): Promise<PlannedStep<H>> {
    if (this.#busy) throw new Error('ChainCursor.advance called while another advance is pending');
    this.#busy = true;
    try {
      const version = this.#version;
      const { result, keep } = await this.#plan(head, source, bounds);
      return { result, keep, version };
    } finally {
      this.#busy = false;
    }
  }

  /** Apply a planned step. Throws if another step was applied since it was planned. */
  commit(step: PlannedStep<H>): void {
    if (step.version !== this.#version) throw new Error('ChainCursor.commit: the cursor moved since this step was planned');
    this.#apply(step);
  }

  /** copy (for a group of clients that splits off from another); heads are shared, not copied */
  clone(): ChainCursor<H> {
    const copy = new ChainCursor<H>({ capacity: this.#capacity });
    copy.#chain = [...this.#chain];
    copy.#byHash = new Map(this.#byHash);
    copy.#orphans = new Set(this.#orphans);
    copy.#forgotten = this.#forgotten;
    return copy;
  }

  /** heads delivered after the given block number (default: all remembered), ascending */
  snapshot(after?: bigint): H[] {
    return after === undefined ? [...this.#chain] : this.#chain.filter((h) => h.number > after);
  }

  async #plan(head: H, source: HeadSource<H>, bounds: AdvanceBounds): Promise<Plan<H>> {
    const tip = this.#chain.at(-1);
    const oldest = this.#chain[0];
    if (tip === undefined || oldest === undefined) {
      return { result: { deliver: [head], orphaned: [], truncated: false }, keep: 0 };
    }
    // Duplicate notification, or an older head we already delivered (out of order, lagging node).
    if (this.#byHash.has(head.hash)) return this.#nothing();
    if (head.parentHash === tip.hash) {
      assertParent(tip, head);
      return { result: { deliver: [head], orphaned: [], truncated: false }, keep: this.#chain.length };
    }
    // Below the tip on another branch: the node in use is behind and has not seen the reorg the
    // stream already followed (a node moved to on failover), which is far likelier than a reorg to
    // a shorter branch (geth sends no head for a rewind). Wait, as for a node behind on the same
    // chain: once its head reaches the tip's height, a real reorg is delivered from the fork point.
    if (head.number < tip.number) return this.#nothing();
    // At the tip's height on a branch the stream left: the same node behind, one block later.
    if (head.number === tip.number && this.#orphans.has(head.hash)) return this.#nothing();
    return this.#planWalk(head, tip, oldest, source, bounds, replayLimit(bounds));
  }

  /**
   * Gap or reorg: walk back from the head by parentHash until a delivered hash (the fork point),
   * then deliver the walked path. Every height the walk passes without a match proves the
   * delivered head there (and everything above it) is off the new chain.
   */
  async #planWalk(head: H, tip: H, oldest: H, source: HeadSource<H>, bounds: AdvanceBounds,
    maxBlocks: number): Promise<Plan<H>> {
    // The path has at least head - tip blocks; no point fetching if that is already too many.
    if (head.number - tip.number > BigInt(maxBlocks)) return this.#jump(head, source);
    let gap: Map<string, H> | undefined;
    const path: H[] = [head];
    let child = head;
    for (;;) {
      // A head at the tip's height that descends from an orphaned block is still on the branch the
      // stream left (a node that has not seen the reorg): taken for a reorg back to it, the stream
      // would go there and back, sending heads and logs twice. A real return to that branch shows
      // once it grows past the tip.
      if (head.number === tip.number && this.#orphans.has(child.parentHash)) return this.#nothing();
      const fork = this.#byHash.get(child.parentHash);
      if (fork !== undefined) {
        assertParent(fork, child);
        const keep = this.#indexOf(fork.number) + 1;
        const orphaned = this.#chain.slice(keep).reverse();
        return { result: { deliver: path.reverse(), orphaned, truncated: false }, keep };
      }
      if (child.number <= oldest.number) {
        // Below the oldest head without a link. With nothing forgotten yet, the fork point is older
        // than the stream itself: the walked branch goes out from the stream's first height (the
        // parent of its first block the stream never had), every delivered head orphaned.
        // Otherwise the fork point is older than the buffer: jump.
        return this.#forgotten ? this.#jump(head, source, child.number) : this.#olderThanStream(path.reverse());
      }
      if (bounds.abandoned?.() === true) return this.#nothing();
      // Walk too long, or the upstream cannot link: jump.
      if (path.length >= maxBlocks || performance.now() >= bounds.deadline) return this.#jump(head, source, child.number);
      let parent = source.known(child.parentHash) ?? null;
      if (parent === null) {
        gap ??= await gapHeaders(tip, child, source, bounds);
        parent = gap.get(child.parentHash) ?? await source.byHash(child.parentHash);
      }
      if (parent === null) {
        if (++this.#unlinkedSteps >= UNLINKED_STEPS_BEFORE_JUMP || performance.now() >= bounds.deadline) return this.#jump(head, source, child.number);
        throw new UnknownParentError(`the node has no block ${child.parentHash}, parent of head ${head.number} (${head.hash}), yet`);
      }
      assertFetched(parent, child);
      path.push(parent);
      child = parent;
    }
  }

  /** A reorg whose fork point is older than the stream: every delivered head orphaned, no jump. */
  #olderThanStream(branch: H[]): Plan<H> {
    return { result: { deliver: branch, orphaned: [...this.#chain].reverse(), truncated: false }, keep: 0 };
  }

  #nothing(): Plan<H> {
    return { result: { deliver: [], orphaned: [], truncated: false }, keep: this.#chain.length };
  }

  /**
   * Reset to just `head`. Delivered heads at or above `orphanFrom` are proven orphaned (the walk
   * passed their heights on the new chain); those below it the walk did not reach, and the node is
   * asked which of them it still has: a reorg during a gap too long to walk (every node away for
   * longer than the replay bounds) took blocks whose logs the clients hold, and their removals are
   * due. That costs one call without a reorg, and is made also past the deadline (the heads
   * orphaned cannot be known later: the cursor forgets them here).
   */
  async #jump(head: H, source: HeadSource<H>, orphanFrom = head.number + 1n): Promise<Plan<H>> {
    const unproven = this.#chain.filter((h) => h.number < orphanFrom);
    const orphaned = this.#chain.slice(await stillCanonical(unproven, source)).reverse();
    return { result: { deliver: [head], orphaned, truncated: true }, keep: 0 };
  }

  #indexOf(number: bigint): number {
    const first = this.#chain[0];
    return first === undefined ? -1 : Number(number - first.number);
  }

  #apply({ result, keep }: Plan<H>): void {
    if (result.deliver.length === 0) return;
    this.#version++;
    this.#unlinkedSteps = 0;
    if (keep === 0) this.#forgotten = false;
    for (const dropped of this.#chain.splice(keep)) this.#byHash.delete(dropped.hash);
    for (const orphan of result.orphaned) {
      this.#orphans.delete(orphan.hash);
      this.#orphans.add(orphan.hash);
    }
    for (const delivered of result.deliver) this.#orphans.delete(delivered.hash);
    for (const oldest of this.#orphans) {
      if (this.#orphans.size <= this.#capacity) break;
      this.#orphans.delete(oldest);
    }
    for (const head of result.deliver) {
      this.#chain.push(head);
      this.#byHash.set(head.hash, head);
    }
    const excess = this.#chain.length - this.#capacity;
    if (excess > 0) {
      for (const evicted of this.#chain.splice(0, excess)) this.#byHash.delete(evicted.hash);
      this.#forgotten = true;
    }
  }
}

/**
 * The node's headers at the heights between the tip and `child`, fetched at once (as the source's
 * concurrency allows) and keyed by hash, when the walk first needs a parent the source does not
 * hold (another stream's walk fetched those it holds). The walk takes its parents from them and
 * asks by hash only for those it does not find: below the tip (a reorg), a height the node
 * answered null for, or a block the node reorged away since it sent the head. Fetched one by one,
 * a replay over a link with an 80 ms round trip reached replayMaxMs (10 s) before replayMaxBlocks
 * (128).
 */
async function gapHeaders<H extends Head>(tip: H, child: H, source: HeadSource<H>, bounds: AdvanceBounds): Promise<Map<string, H>> {
  const headers = new Map<string, H>();
  // From the top down, as the walk takes them, GAP_BATCH at a time: a replay bound or the clients
  // leaving stops the fetch too (replayMaxBlocks may be set far above the default).
  for (let high = child.number - 1n; high > tip.number; high -= BigInt(GAP_BATCH)) {
    if (bounds.abandoned?.() === true || performance.now() >= bounds.deadline) break;
    const heights: bigint[] = [];
    for (let number = high; number > tip.number && number > high - BigInt(GAP_BATCH); number--) heights.push(number);
    for (const header of await Promise.all(heights.map((number) => source.byNumber(number)))) {
      if (header !== null) headers.set(header.hash, header);
    }
  }
  return headers;
}

/**
 * How many of `heads` (delivered, ascending and parent-linked) are still on the node's chain: a
 * prefix, since each links to the one before. One call when the newest is (no reorg), else a
 * binary search: at most 1 + log2(heads) calls, 9 for the default historyBlocks. A height the node
 * answers null for (a backend behind) proves nothing: the heads not proven gone count as still
 * there, as they did before the check.
 */
async function stillCanonical<H extends Head>(heads: H[], source: HeadSource<H>): Promise<number> {
  // heads[0, low) are on the node's chain, heads[high, length) are not.
  let low = 0;
  let high = heads.length;
  for (let first = true; low < high; first = false) {
    const probe = first ? high - 1 : Math.floor((low + high) / 2);
    const head = heads[probe]!;
    const onNode = await source.byNumber(head.number);
    if (onNode === null) break;
    if (onNode.hash === head.hash) low = probe + 1;
    else high = probe;
  }
  return high;
}

function replayLimit(bounds: AdvanceBounds): number {
  const { maxReplayBlocks = DEFAULT_MAX_REPLAY_BLOCKS } = bounds;
  if (!Number.isSafeInteger(maxReplayBlocks) || maxReplayBlocks < 1) {
    throw new RangeError(`maxReplayBlocks must be a positive integer, got ${maxReplayBlocks}`);
  }
  return maxReplayBlocks;
}

/** A child naming `parent` by hash must sit one height above it, or the upstream sent garbage. */
function assertParent(parent: Head, child: Head): void {
  if (child.number !== parent.number + 1n) {
    throw new Error(
      `inconsistent headers: ${child.hash} at ${child.number} names parent ${parent.hash} at ${parent.number}`,
    );
  }
}

/** The source must return the header asked for, one height below the child. */
function assertFetched(parent: Head, child: Head): void {
  if (parent.hash !== child.parentHash) {
    throw new Error(`head source returned ${parent.hash} when asked for ${child.parentHash}`);
  }
  assertParent(parent, child);
}
