/**
 * Filter methods. A filter lives on one node, and its id says which (filter-id.ts), so any session,
 * or any evmux replica with the same upstream list, reaches it. A filter this evmux made is also
 * kept in its book (filter-book.ts): when its node goes down, falls behind (or is otherwise unfit
 * for traffic) while another node is not, comes back without it ("filter not found"), or is a
 * fallback while a primary is back (as streams move back), the filter is made again on another
 * node under the id its client holds, and the next eth_getFilterChanges hands over what the client
 * missed meanwhile (filter-cursor.ts): the logs of the blocks in between, read with eth_getLogs, or
 * their hashes. A pending-transaction filter is made again without that; pending transactions are
 * not replayed anywhere.
 *
 * ethers v6 (JsonRpcProvider) watches contract events with a filter and polls its id for as long
 * as it listens, whatever the answer: without this a node that went away silenced it for good.
 */
import { performance } from 'node:perf_hooks';
import type { Config } from '../config/schema.js';
import { FilterNotFoundError, LimitExceededError, UpstreamUnavailableError } from '../jsonrpc/errors.js';
import { blockNumber, blockTag } from '../jsonrpc/block-ref.js';
import { quantity } from '../jsonrpc/hex.js';
import type { Logger } from '../log.js';
import { ownWorkSlots, Slots } from '../runtime/slots.js';
import { WarningThrottle } from '../runtime/warning-throttle.js';
import { addressBlock } from '../server/address-block.js';
import type { SessionAffinity } from '../subs/affinity.js';
import type { Telemetry } from '../telemetry.js';
import { isSocketGone, UpstreamFailure } from '../upstream/errors.js';
import { NODE_WAIT_MS, type UpstreamPool } from '../upstream/pool.js';
import { isNullResult, lastBlockNumber, replyResult, resultReply, type Caller, type UpstreamReply } from '../upstream/reply.js';
import { ParamsJson } from '../upstream/request-frame.js';
import type { Upstream } from '../upstream/upstream.js';
import { highestLogBlock, noteAnsweredHead } from './answered-head.js';
import { blockMissingMayBeLag } from './block-requirement.js';
import type { CallContext } from './call-router.js';
import { FilterBook, type FilterRecord } from './filter-book.js';
import { filterCursor, type FilterKind } from './filter-cursor.js';
import { checkNodeFilterId, decodeFilterId } from './filter-id.js';
import { replayLogs } from './filter-replay-logs.js';
import type { HandedBlockHashes } from './handed-block-hashes.js';
import { highestHead } from './node-picker.js';
import { isFilterGone, mayHaveReachedNode } from './retry-policy.js';

/**
 * node_down: unhealthy or failing calls; node_unusable: answering but lagging, stalled or on another
 * chain; filter_lost: back without it; primary_back: on a fallback, a primary back past hold-down
 */
export type FilterMoveReason = 'node_down' | 'node_unusable' | 'filter_lost' | 'primary_back';

const KINDS: ReadonlyMap<string, FilterKind> = new Map([
  ['eth_newFilter', 'logs'],
  ['eth_newBlockFilter', 'blocks'],
  ['eth_newPendingTransactionFilter', 'pending'],
]);

/** Blocks whose hashes a block filter's replay asks for at once. */
const BLOCK_LOOKUPS_AT_ONCE = 16;

export interface FilterCalls {
  /** One try on one node; UpstreamFailure when the node could not answer. */
  attempt(upstream: Upstream, method: string, params: unknown, caller: Caller): Promise<UpstreamReply>;
  /** A serving node not in `exclude`, by the balancer; with `minHead`, only one known to have that block. */
  pick(exclude: ReadonlySet<string>, minHead?: bigint): Upstream | undefined;
  /** A plain call, routed as the router routes it: to a node that has the blocks it names, retried elsewhere. */
  read(method: string, params: unknown, caller: CallContext): Promise<UpstreamReply>;
}

type Settings = Pick<Config, 'subscriptions' | 'limits'>;

/** How often idle filters are looked for (FilterKeeper.#sweep). */
const SWEEP_MS = 60_000;

export class FilterKeeper {
  readonly #book = new FilterBook();
  /**
   * Forgets idle filters though no filter call comes (the book does on each): when every filter
   * client has left, their filters would otherwise stay, in memory and in /status, for good.
   */
  readonly #sweep = setInterval(() => this.#book.expire(), SWEEP_MS).unref();
  readonly #pool: UpstreamPool;
  readonly #affinity: SessionAffinity;
  readonly #calls: FilterCalls;
  /** the hashes block filters handed over, for reads of those blocks (handed-block-hashes.ts) */
  readonly #handed: HandedBlockHashes;
  readonly #replayMaxBlocks: bigint;
  readonly #maxPerClient: number;
  readonly #ipv6PrefixLength: number;
  /** filters being made, per client address */
  readonly #making = new Map<string, number>();
  /** per node, the moves to it in progress: a node gone with thousands of filters must not overflow the next one's queue */
  readonly #moving = new Map<Upstream, Slots>();
  readonly #telemetry: Telemetry;
  readonly #logger: Logger;
  readonly #warnings: WarningThrottle;

  constructor(pool: UpstreamPool, affinity: SessionAffinity, calls: FilterCalls, handed: HandedBlockHashes, settings: Settings, telemetry: Telemetry, logger: Logger) {
    this.#pool = pool;
    this.#affinity = affinity;
    this.#calls = calls;
    this.#handed = handed;
    this.#replayMaxBlocks = BigInt(settings.subscriptions.replayMaxBlocks);
    this.#maxPerClient = settings.limits.maxInstalledFiltersPerIp;
    this.#ipv6PrefixLength = settings.limits.ipv6PrefixLength;
    this.#telemetry = telemetry;
    this.#logger = logger;
    this.#warnings = new WarningThrottle(logger);
  }

  /** What limits.maxInstalledFiltersPerIp counts the caller as (address-block.ts). */
  #clientOf(caller: CallContext): string {
    return addressBlock(caller.clientIp, this.#ipv6PrefixLength);
  }

  /** eth_newFilter, eth_newBlockFilter, eth_newPendingTransactionFilter: on the session's node. */
  async create(method: string, params: unknown, caller: CallContext): Promise<UpstreamReply> {
    const kind = KINDS.get(method);
    if (kind === undefined) throw new Error(`${method} makes no filter`);
    const clientIp = this.#clientOf(caller);
    // Filters still being made count too: a burst of them would otherwise all pass before any is kept.
    const making = this.#making.get(clientIp) ?? 0;
    if (this.#book.countOf(clientIp) + making >= this.#maxPerClient) {
      this.#telemetry.clientRejected('installed_filters_per_ip');
      throw new LimitExceededError(
        `too many installed filters from ${clientIp}: at most ${this.#maxPerClient} (limits.maxInstalledFiltersPerIp); uninstall one (eth_uninstallFilter) first, or poll one you have`,
      );
    }
    this.#making.set(clientIp, making + 1);
    try {
      return await this.#whileNodesComeBack(() => this.#make(kind, method, params, caller));
    } finally {
      const left = (this.#making.get(clientIp) ?? 1) - 1;
      if (left > 0) this.#making.set(clientIp, left);
      else this.#making.delete(clientIp);
    }
  }

  async #make(kind: FilterKind, method: string, params: unknown, caller: CallContext): Promise<UpstreamReply> {
    const owner = this.#affinity.owner(caller.sessionKey);
    if (owner === undefined) throw new NoNodeNow('no upstream available for filters');
    let reply: UpstreamReply;
    try {
      reply = await this.#makeOn(owner, kind, method, params, caller);
    } catch (error) {
      // The session's node failed under the call (its socket closed a moment ago, it hangs): a
      // filter is made on another node as well. One it made meanwhile expires there unpolled.
      const other = error instanceof UpstreamUnavailableError ? this.#calls.pick(new Set([owner.name])) : undefined;
      if (other === undefined) throw error;
      return this.#makeOn(other, kind, method, params, caller);
    }
    // The session's node, a block behind (usable), refused a logs filter from the head the client
    // was just told of (anvil does; geth takes it): viem's createEventFilter({ fromBlock: head })
    // got -32602. It is made once on a node known to have that block, which holds it from then on.
    if (reply.error === undefined || !blockMissingMayBeLag(method, reply.error)) return reply;
    const ahead = this.#calls.pick(new Set([owner.name]), blockNumber(criteriaOf(params)['fromBlock']) ?? owner.headNumber + 1n);
    return ahead === undefined ? reply : this.#makeOn(ahead, kind, method, params, caller);
  }

  async #makeOn(upstream: Upstream, kind: FilterKind, method: string, params: unknown, caller: CallContext): Promise<UpstreamReply> {
    // The node's filter starts at its head when it gets the call: at least what it says just before.
    // evmux's own idea of that head may be a probe interval old, and a replay from there would hand
    // over logs of blocks the filter never covered.
    // A node that does not answer fails the call here (UpstreamUnavailableError), so the filter is
    // made on another node at once, not after a second timeout on the eth_new*Filter.
    const head = kind === 'pending' ? -1n : await this.#headOf(upstream, caller, false, upstream.headNumber);
    const reply = await this.#attemptOrThrow(upstream, method, params, caller);
    if (reply.error !== undefined) return reply;
    const nodeId = String(replyResult(reply));
    const id = this.#book.idFor(this.#pool.indexOf(upstream), nodeId);
    this.#book.add(id, {
      kind,
      method,
      paramsJson: JSON.stringify(Array.isArray(params) ? params : []),
      sessionKey: caller.sessionKey,
      clientIp: this.#clientOf(caller),
      upstream,
      nodeId,
      lost: false,
      cursor: filterCursor(kind, head),
      lastUsed: performance.now(),
      owed: [],
      turn: Promise.resolve(),
    });
    return resultReply(id);
  }

  /** eth_getFilterChanges, eth_getFilterLogs, eth_uninstallFilter: on the node holding the filter. */
  use(method: string, params: unknown, caller: CallContext): Promise<UpstreamReply> {
    const list = Array.isArray(params) ? params : [];
    const id = list[0];
    const { upstreamIndex, nodeId } = decodeFilterId(id);
    const record = this.#book.use(id as string);
    if (record === undefined) {
      const upstream = this.#pool.upstreams[upstreamIndex];
      // Of no node here, or of a node filter a kept filter holds now (a node that counts its ids
      // gave the id again): what a node says of an id it does not know.
      if (upstream === undefined || this.#book.holdsNodeFilter(upstream, nodeId)) return Promise.resolve(filterGone(method));
      const asked = this.#attemptOrThrow(upstream, method, [nodeId, ...list.slice(1)], caller);
      // An id evmux does not know (uninstalled already, or another replica's) on a node it cannot
      // reach: that node has no filter to give up.
      return method === 'eth_uninstallFilter' ? asked.catch(unreachableUninstall) : asked;
    }
    // One call on a filter at a time: a poll must see what the one before it handed over.
    const run = record.turn.then(() => this.#useRecorded(record, id as string, method, list.slice(1), caller));
    record.turn = run.catch(() => {});
    return run;
  }

  /** Filters in the book, for /status (those idle too long forgotten first). */
  get count(): number {
    this.#book.expire();
    return this.#book.size;
  }

  close(): void {
    clearInterval(this.#sweep);
  }

  async #useRecorded(record: FilterRecord, id: string, method: string, rest: unknown[], caller: CallContext): Promise<UpstreamReply> {
    if (!this.#book.holds(id, record)) {
      // Uninstalled meanwhile: its node filter went with it, or is another kept filter's now.
      if (record.lost || this.#book.holdsNodeFilter(record.upstream, record.nodeId)) return filterGone(method);
      return this.#attemptOrThrow(record.upstream, method, [record.nodeId, ...rest], caller);
    }
    if (method === 'eth_uninstallFilter') return this.#uninstall(record, id, caller);
    // Every node away at once (a blip): its own node is waited for, as calls wait, and keeps the
    // filter. Moved as soon as the first node was back, the filter was made again on each blip
    // and the node filter left behind kept matching until its node forgot it.
    if (!record.lost && !record.upstream.healthy && this.#pool.serving().length === 0) {
      await this.#pool.untilUsable(record.upstream, performance.now() + NODE_WAIT_MS);
    }
    let reason: FilterMoveReason = 'node_down';
    // Its node gave its id to another filter: asked, it would answer with that filter's changes.
    if (record.lost) reason = 'filter_lost';
    // A node that answers but is not fit for traffic keeps the filter only while no other node is.
    else if (record.upstream.healthy && !this.#pool.isUsable(record.upstream) && this.#usableTarget(record)) reason = 'node_unusable';
    // A fallback keeps it only while no primary is fit to: left there, a paid fallback served a
    // primary's traffic for as long as the client polled.
    else if (record.upstream.healthy && this.#primaryBack(record)) reason = 'primary_back';
    else if (method === 'eth_getFilterLogs' && this.#lacksFilterBlocks(record)) return this.#filterLogsElsewhere(record, caller);
    else if (record.upstream.healthy) {
      const headAtSend = record.upstream.headNumber;
      try {
        const reply = await this.#calls.attempt(record.upstream, method, [record.nodeId, ...rest], caller);
        // Nodes answer eth_getFilterLogs on a block or pending filter with "filter not found" (it is
        // for logs filters only): the node's answer, not a sign that it lost the filter.
        if (!isFilterGoneReply(reply) || (method === 'eth_getFilterLogs' && record.kind !== 'logs')) {
          if (method === 'eth_getFilterChanges') return this.#handOver(record, reply, headAtSend);
          // Logs in block order, none removed (as eth_getLogs answers): the last is the highest.
          if (record.kind === 'logs') noteLogsHead(record, lastBlockNumber(reply));
          return reply;
        }
        reason = 'filter_lost';
      } catch (error) {
        if (!(error instanceof UpstreamFailure)) throw error;
        // Refused before it left evmux (the node's queue full): busy, not gone, and so is not its
        // filter. Moved, the filter cost an overloaded node three more calls, and with no other node
        // the client was told its node was unavailable.
        if (!mayHaveReachedNode(error)) throw new UpstreamUnavailableError(`${method}: upstream ${record.upstream.name}, which holds this filter, is busy (${error.message}); try again shortly`);
      }
    }
    // Moved, not polled again where the poll failed: its answer, lost with the socket, may have
    // taken the changes the move hands over.
    const missed = await this.#whileNodesComeBack(() => this.#move(record, id, reason, caller));
    if (method === 'eth_getFilterChanges') return resultReply(this.#withOwed(record, missed));
    // Not this call's to hand over: the next poll's.
    if (missed.length > 0) record.owed = record.owed.length === 0 ? missed : [...record.owed, ...missed];
    if (method === 'eth_getFilterLogs' && this.#lacksFilterBlocks(record)) return this.#filterLogsElsewhere(record, caller);
    return this.#attemptOrThrow(record.upstream, method, [record.nodeId, ...rest], caller);
  }

  /**
   * A logs filter's node is behind another serving node (usable: within health.maxLagBlocks), and
   * the filter reaches past its head (up to `latest`, or a toBlock above it). Asked, the node answers
   * eth_getFilterLogs up to its own head (anvil does), without the logs of the blocks it lacks,
   * where eth_getLogs of the same filter through evmux has them.
   */
  #lacksFilterBlocks(record: FilterRecord): boolean {
    if (record.kind !== 'logs' || !record.upstream.healthy) return false;
    const head = record.upstream.headNumber;
    if (head >= highestHead(this.#pool.serving())) return false;
    const toBlock = blockNumber(criteriaOf(JSON.parse(record.paramsJson))['toBlock']);
    return toBlock === undefined || toBlock > head;
  }

  /**
   * eth_getFilterLogs answered as a node answers it, the logs of the filter's range, by eth_getLogs
   * of its criteria, sent to a node that has the blocks (and a second node on "unknown block"). The
   * node filter stays where it is, and its changes are handed over by its own node as ever.
   */
  #filterLogsElsewhere(record: FilterRecord, caller: CallContext): Promise<UpstreamReply> {
    return this.#calls.read('eth_getLogs', JSON.parse(record.paramsJson), caller);
  }

  /** A poll's answer, without what the client was handed already; recorded as handed over. */
  #handOver(record: FilterRecord, reply: UpstreamReply, headAtSend: bigint): UpstreamReply {
    if (reply.error !== undefined || record.cursor === undefined) return reply;
    const items = replyResult(reply);
    if (!Array.isArray(items)) return reply;
    if (record.kind === 'logs') noteLogsHead(record, highestLogBlock(items));
    else if (record.kind === 'blocks') this.#handed.note(record.upstream, items);
    const kept = record.cursor.answered(items, headAtSend);
    if (record.owed.length > 0) return resultReply(this.#withOwed(record, kept));
    return kept.length === items.length ? reply : resultReply(kept);
  }

  /** `items` behind what a move on another call found missed, which is then handed over. */
  #withOwed(record: FilterRecord, items: unknown[]): unknown[] {
    if (record.owed.length === 0) return items;
    const all = [...record.owed, ...items];
    record.owed = [];
    return all;
  }

  /**
   * Make the filter again on another node (or on its own, back without it) and return what its
   * client missed. Nothing changes unless every step works: the next poll tries again.
   */
  async #move(record: FilterRecord, id: string, reason: FilterMoveReason, caller: CallContext): Promise<unknown[]> {
    const target = this.#target(record, reason);
    if (target === undefined) throw new NoNodeNow(`filter ${id}: upstream ${record.upstream.name} holding it is unavailable, and no other upstream is`);
    // A node behind where a block filter's replay starts has nothing new for it yet: the next poll tries again.
    if (record.cursor?.canMoveTo(target.headNumber) === false) return [];
    return this.#movesTo(target).run(() => this.#makeAgain(record, id, reason, target, caller));
  }

  /** The moves to `target` at once: as many as subscriptions' replays may make there; the rest wait. */
  #movesTo(target: Upstream): Slots {
    let slots = this.#moving.get(target);
    if (slots === undefined) this.#moving.set(target, (slots = new Slots(ownWorkSlots(target.maxConcurrency))));
    return slots;
  }

  async #makeAgain(record: FilterRecord, id: string, reason: FilterMoveReason, target: Upstream, caller: CallContext): Promise<unknown[]> {
    const from = record.upstream;
    const made = await this.#attemptOrThrow(target, record.method, JSON.parse(record.paramsJson), caller, true);
    if (made.error !== undefined) throw new UpstreamUnavailableError(`filter ${id}: ${target.name} refused to make it again: ${made.error.message}`);
    const nodeId = String(replyResult(made));
    let missed: unknown[] = [];
    let through = -1n;
    try {
      checkNodeFilterId(nodeId);
      if (record.cursor !== undefined) {
        through = await this.#headOf(target, caller, true);
        missed = await this.#missed(record, id, target, through, caller);
      }
    } catch (error) {
      void this.#calls.attempt(target, 'eth_uninstallFilter', [nodeId], caller).catch(() => {});
      throw error;
    }
    // The node filter left behind goes, where the node can still be asked: left, it would keep
    // matching, and the client's id, which names it, would reach it once evmux forgets the filter.
    // Not on the same node, nor on one whose sockets closed since (either may have restarted, and
    // a node that counts its ids from 1 again, as Nethermind does, may have given the id to
    // another filter: asked once it was back, evmux ended other clients' new filters).
    // Nor when that node gave its id to another filter (lost): that one is not the client's to end.
    if (from !== target && from.connected && !record.lost) void this.#calls.attempt(from, 'eth_uninstallFilter', [record.nodeId], caller).catch(() => {});
    this.#book.moved(id, record, target, nodeId);
    record.cursor?.replayed(missed, through);
    // The hashes of the blocks it missed, read from `target`, which hands them over.
    if (record.kind === 'blocks') this.#handed.note(target, missed);
    this.#telemetry.filterMoved(record.kind, reason, missed.length);
    // Per filter at debug: a node that goes away takes every filter it holds, and they move as they are polled.
    this.#logger.debug({ filter: id, kind: record.kind, from: from.name, to: target.name, reason, replayed: missed.length }, 'filter made again on another node');
    return missed;
  }

  /**
   * Where the filter goes: the session's node, else any serving one; not back to a node down or
   * unfit, unless it is the only one serving again (its sockets closed a moment, with every other
   * node's or with no other node): made again there, and handed over from where the client was.
   */
  #target(record: FilterRecord, reason: FilterMoveReason): Upstream | undefined {
    const exclude: ReadonlySet<string> = reason === 'filter_lost' ? new Set() : new Set([record.upstream.name]);
    const owner = this.#affinity.owner(record.sessionKey);
    const target = owner !== undefined && !exclude.has(owner.name) ? owner : this.#calls.pick(exclude);
    return target ?? (reason === 'node_down' && this.#pool.isUsable(record.upstream) ? record.upstream : undefined);
  }

  /**
   * Runs `step`, and again while it fails for want of a node (NoNodeNow) and some node serves again
   * within NODE_WAIT_MS, as plain calls wait; at most once per node and once more. Every node's
   * sockets closing at once (a load balancer restarting, a network blip; each node's close read in
   * a turn of its own) failed the filter calls in flight with -32050 though the nodes were back
   * within milliseconds; ethers v6 keeps a failed eth_newFilter for good, and its listener heard
   * nothing more.
   */
  async #whileNodesComeBack<T>(step: () => Promise<T>): Promise<T> {
    const until = performance.now() + NODE_WAIT_MS;
    for (let tries = this.#pool.upstreams.length; ; tries--) {
      try {
        return await step();
      } catch (error) {
        if (!(error instanceof NoNodeNow) || tries === 0 || !(await this.#pool.untilServing(until))) throw error;
      }
    }
  }

  /**
   * The filter is on a fallback and its session's node is a primary again: one usable for
   * subscriptions.holdDownMs (affinity.ts), as when streams move back, so a flapping primary does
   * not drag filters back and forth.
   */
  #primaryBack(record: FilterRecord): boolean {
    return record.upstream.role === 'fallback' && this.#affinity.owner(record.sessionKey)?.role === 'primary';
  }

  #usableTarget(record: FilterRecord): boolean {
    const target = this.#target(record, 'node_unusable');
    return target !== undefined && this.#pool.isUsable(target);
  }

  /** What the filter would have reported between what it handed over and `through`, on `target`. */
  async #missed(record: FilterRecord, id: string, target: Upstream, through: bigint, caller: CallContext): Promise<unknown[]> {
    const cursor = record.cursor!;
    const criteria = criteriaOf(JSON.parse(record.paramsJson));
    let from = cursor.replayFrom;
    let to = through;
    if (record.kind === 'logs') {
      // A filter on one block hash reports nothing new, ever.
      if (criteria['blockHash'] !== undefined) return [];
      const fromBlock = await this.#bound(criteria['fromBlock'], target, caller);
      const toBlock = await this.#bound(criteria['toBlock'], target, caller);
      if (fromBlock !== undefined && fromBlock > from) from = fromBlock;
      if (toBlock !== undefined && toBlock < to) to = toBlock;
    }
    if (to < from) return [];
    if (to - from + 1n > this.#replayMaxBlocks) {
      this.#warnings.warn(
        { upstream: target.name, filter: id, missedBlocks: Number(to - from + 1n), replayMaxBlocks: Number(this.#replayMaxBlocks) },
        'filter replay cut short: only the last subscriptions.replayMaxBlocks blocks are handed over',
      );
      from = to - this.#replayMaxBlocks + 1n;
    }
    if (record.kind === 'logs') {
      const logs = await replayLogs(
        {
          read: (first, last) => this.#replayRead(target, 'eth_getLogs', [{ ...criteria, fromBlock: hex(first), toBlock: hex(last) }], caller),
          skipped: (block, refusal) => {
            this.#telemetry.replayTruncated('logs');
            this.#warnings.warn(
              { upstream: target.name, filter: id, block: Number(block), error: refusal },
              "a block's logs are more than the node serves in one answer: the filter's replay skips them",
            );
          },
          failed: (reason) => new UpstreamUnavailableError(`filter ${id}: ${target.name} did not give the logs the filter missed: ${reason}`),
        },
        from,
        to,
      );
      return cursor.unsent(logs);
    }
    const hashes: unknown[] = [];
    for (let start = from; start <= to; start += BigInt(BLOCK_LOOKUPS_AT_ONCE)) {
      const numbers: bigint[] = [];
      for (let number = start; number <= to && number < start + BigInt(BLOCK_LOOKUPS_AT_ONCE); number++) numbers.push(number);
      hashes.push(...(await Promise.all(numbers.map((number) => this.#hashOf(target, number, id, caller)))));
    }
    return cursor.unsent(hashes);
  }

  /**
   * A logs filter's fromBlock or toBlock as the node holding it reads it: a number (`0x` or `0X`),
   * `earliest` as block 0, `safe` and `finalized` as `target` has them now; none for `latest`,
   * `pending` or no bound (the replay goes to the head).
   */
  async #bound(value: unknown, target: Upstream, caller: Caller): Promise<bigint | undefined> {
    const number = blockNumber(value);
    if (number !== undefined) return number;
    const tag = blockTag(value);
    if (tag === 'earliest') return 0n;
    if (tag !== 'safe' && tag !== 'finalized') return undefined;
    const reply = await this.#attemptOrThrow(target, 'eth_getBlockByNumber', [tag, false], caller, true);
    const block = reply.error === undefined ? (replyResult(reply) as { number?: unknown } | null) : null;
    const height = quantity(block?.number);
    if (height === undefined) throw new UpstreamUnavailableError(`${target.name} did not give its ${tag} block, which bounds the filter: ${reply.error?.message ?? 'no number'}`);
    return height;
  }

  async #hashOf(target: Upstream, number: bigint, id: string, caller: CallContext): Promise<string> {
    const reply = await this.#replayRead(target, 'eth_getBlockByNumber', [hex(number), false], caller);
    const block = reply.error === undefined ? (replyResult(reply) as { hash?: unknown } | null) : null;
    if (typeof block?.hash !== 'string') throw new UpstreamUnavailableError(`filter ${id}: ${target.name} did not give block ${number}, which the filter missed`);
    return block.hash;
  }

  /**
   * One read of a move's replay, of `target`. An answer that it lacks the block the read names (a
   * refusal blockMissingMayBeLag recognises, or a null block) may only mean it has not got that
   * block yet, though it gave it as its head a moment before (a provider's backend behind the one
   * that answered, a node mid-reorg): the read is then routed as a client's own read of those blocks
   * is, to a node known to have them (a null block asked again shortly). Taken as it was, it failed
   * the client's poll with -32050 and viem's watchers called onError; the next poll had it all.
   */
  async #replayRead(target: Upstream, method: string, params: unknown[], caller: CallContext): Promise<UpstreamReply> {
    const reply = await this.#attemptOrThrow(target, method, params, caller, true);
    const lacksBlock = reply.error === undefined ? isNullResult(reply) : blockMissingMayBeLag(method, reply.error);
    return lacksBlock ? this.#calls.read(method, params, caller) : reply;
  }

  /**
   * The node's head, by eth_blockNumber. A node that does not answer throws; one that answers
   * something else than a number gives `otherwise`, or throws without one.
   */
  async #headOf(target: Upstream, caller: Caller, moving: boolean, otherwise?: bigint): Promise<bigint> {
    const reply = await this.#attemptOrThrow(target, 'eth_blockNumber', [], caller, moving);
    const head = reply.error === undefined ? quantity(replyResult(reply)) : undefined;
    if (head === undefined && otherwise !== undefined) return otherwise;
    if (head === undefined) throw new UpstreamUnavailableError(`${target.name} did not give its head: ${reply.error?.message ?? 'not a number'}`);
    target.noteReportedHead(head);
    return head;
  }

  /** The filter is gone for the client whatever its node says: a node that is down or lost it has none. */
  async #uninstall(record: FilterRecord, id: string, caller: Caller): Promise<UpstreamReply> {
    this.#book.delete(id);
    // A lost filter's node id is another filter's now.
    if (record.lost) return resultReply(true);
    if (!record.upstream.healthy) {
      // Not waited for (a node that fails its probes may not answer), but asked: left installed, the
      // filter held the node's memory until its own timeout (5 minutes on geth).
      if (record.upstream.connected) void this.#calls.attempt(record.upstream, 'eth_uninstallFilter', [record.nodeId], caller).catch(() => {});
      return resultReply(true);
    }
    try {
      const reply = await this.#calls.attempt(record.upstream, 'eth_uninstallFilter', [record.nodeId], caller);
      // The node's false (or "not found"): it lost the filter (restarted), which evmux held for the
      // client until now, as for a node that is down.
      return isFilterGoneReply(reply) || (reply.error === undefined && replyResult(reply) === false) ? resultReply(true) : reply;
    } catch (error) {
      if (error instanceof UpstreamFailure) return resultReply(true);
      throw error;
    }
  }

  /** One call; a node that could not answer is the client's -32050, naming the node and, in a move (`moving`), the step. */
  async #attemptOrThrow(upstream: Upstream, method: string, params: unknown, caller: Caller, moving = false): Promise<UpstreamReply> {
    try {
      return await this.#calls.attempt(upstream, method, params, caller);
    } catch (error) {
      if (!(error instanceof UpstreamFailure)) throw error;
      const Unavailable = isSocketGone(error) ? NoNodeNow : UpstreamUnavailableError;
      throw new Unavailable(
        moving
          ? `the filter's node is gone, and ${method} on ${upstream.name} to make it again failed: ${error.code}`
          : `upstream ${upstream.name} holding the filter is unavailable: ${error.code}`,
      );
    }
  }
}

/** -32050 for want of a node this moment: its sockets closed under the call, or none serves. */
class NoNodeNow extends UpstreamUnavailableError {}

/** What a node says of a filter it does not have: false to eth_uninstallFilter, else -32000 "filter not found". */
function filterGone(method: string): UpstreamReply {
  if (method === 'eth_uninstallFilter') return resultReply(false);
  throw new FilterNotFoundError();
}

function unreachableUninstall(error: unknown): UpstreamReply {
  if (error instanceof UpstreamUnavailableError) return resultReply(false);
  throw error;
}

/**
 * The node holding a logs filter has the blocks of the logs it handed over: the highest is noted as
 * its head (answered-head.ts), as an eth_getLogs answer's is. Known only by its probes, the node
 * ahead was not asked when one a block behind answered null to a read of such a log's block or
 * receipt by hash, and viem's and ethers' HTTP event watchers got "not found" for them. (A block
 * filter's answers are hashes only, and how many there are does not tell the head: a reorg's
 * blocks replace others at the same heights. The node that handed each over is kept instead:
 * handed-block-hashes.ts.)
 */
function noteLogsHead(record: FilterRecord, number: number | undefined): void {
  noteAnsweredHead(record.upstream, new ParamsJson(record.paramsJson, false), number);
}

/** A logs filter's criteria, the first of the params it was made with; none for another filter. */
function criteriaOf(params: unknown): Record<string, unknown> {
  const criteria: unknown = Array.isArray(params) ? params[0] : undefined;
  return criteria !== null && typeof criteria === 'object' ? (criteria as Record<string, unknown>) : {};
}

function isFilterGoneReply(reply: UpstreamReply): boolean {
  return reply.error !== undefined && isFilterGone(reply.error);
}

function hex(value: bigint): string {
  return `0x${value.toString(16)}`;
}
