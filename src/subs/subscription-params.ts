/**
 * Validation and normalization of `eth_subscribe` params.
 *
 * Equivalent requests must normalize to the same spec so that they share one upstream subscription
 * and one fingerprint (and so identical notification bytes). Normalization, with geth's matching
 * semantics as the reference for what is equivalent:
 *
 * - addresses and topics are lower-cased;
 * - an address list is sorted and de-duplicated (order never matters), and an empty list is the
 *   same as no address filter (geth matches any address for `[]`);
 * - a topic position that is a single hash becomes a one-element OR-list; an OR-list is sorted and
 *   de-duplicated;
 * - an empty OR-list `[]`, and an OR-list containing `null`, match anything at that position
 *   (as in geth) and become `null`;
 * - `topics: [A]` and `topics: [[A]]` are one filter; trailing `null` positions are kept, since
 *   in geth and Nethermind a filter of N positions matches only logs with at least N topics
 *   (`[Transfer, from, null, null]`, viem's ERC-721 Transfer, leaves out ERC-20's three-topic
 *   Transfers), though anvil pads filters with wildcards.
 *
 * - `fromBlock` and `toBlock` are checked (a block number or tag, read as block-ref.ts reads them:
 *   `0X` hex and tags in any case too, as alloy-based nodes take them). A subscription follows the head
 *   from where it starts, so they fetch no past logs; block numbers bound which blocks' logs it
 *   delivers, as geth and anvil bound theirs (`toBlock: "0x2"` on a chain past block 2 delivers
 *   nothing, `fromBlock` ahead of the head waits for that block), `earliest` is block 0, and the
 *   other tags bound nothing. Clients
 *   send them: web3.js passes `subscribe('logs', { fromBlock })` on to `eth_subscribe` and fetches
 *   the past logs itself with `eth_getLogs`. The bounds are evmux's to apply: the node is sent the
 *   filter without them (geth refuses some combinations, such as a `toBlock` alone), and a bounded
 *   filter is a topic of its own, since its clients are sent other notifications. It shares the
 *   node's subscription to its filter (streamKey): one eth_subscribe however many bounds ride on it.
 *
 * Everything else is refused with InvalidParamsError naming the offending part: `blockHash` (a
 * subscription follows the head), unknown keys, malformed hex, too many addresses, topic positions
 * or OR-alternatives.
 */

import { blockNumber, blockTag } from '../jsonrpc/block-ref.js';
import { InvalidParamsError } from '../jsonrpc/errors.js';

export type SubscriptionKind = 'newHeads' | 'logs' | 'newPendingTransactions' | 'syncing';

export const subscriptionKinds: readonly SubscriptionKind[] = ['newHeads', 'logs', 'newPendingTransactions', 'syncing'];

/** normalized */
export interface LogFilter {
  address?: string[];
  topics?: (string[] | null)[];
}

/** The blocks whose logs a logs subscription delivers, both ends included; unset: no bound. */
export interface BlockBounds {
  from?: bigint;
  to?: bigint;
}

export interface SubscriptionSpec {
  kind: SubscriptionKind;
  filter?: LogFilter;
  /** logs only: block numbers the client bounded its subscription with */
  blocks?: BlockBounds;
  fullTransactions?: boolean;
  /** canonical string: identical for equivalent requests */
  fingerprint: string;
  /**
   * the node's subscription that carries it: the fingerprint without the block numbers, which evmux
   * applies itself, so logs subscriptions that differ only in them share one eth_subscribe on a node
   */
  streamKey: string;
  /** params to send upstream for eth_subscribe, canonical */
  upstreamParams: unknown[];
}

export interface FilterLimits {
  /** @default 1000 */
  maxAddresses: number;
  /** @default 100 per position */
  maxTopicsPerPosition: number;
}

export const defaultFilterLimits: Readonly<FilterLimits> = Object.freeze({ maxAddresses: 1000, maxTopicsPerPosition: 100 });

/** The log filter allows at most four topic positions (LOG0..LOG4). */
const maxTopicPositions = 4;
const addressPattern = /^0x[0-9a-fA-F]{40}$/;
const topicPattern = /^0x[0-9a-fA-F]{64}$/;
/** A block number as JSON-RPC writes it (a quantity: no leading zeros); tags are read by blockTag. */
const quantityPattern = /^0[xX](0|[1-9a-fA-F][0-9a-fA-F]{0,15})$/;
/** Keys a logs subscription accepts and then drops (see the file comment). */
const blockRangeKeys = ['fromBlock', 'toBlock'];

/** Throws InvalidParamsError with a message naming what was wrong. */
export function parseSubscription(params: unknown, limits: FilterLimits = defaultFilterLimits): SubscriptionSpec {
  if (!Array.isArray(params)) throw new InvalidParamsError('eth_subscribe params must be an array');
  const [kind, ...rest] = params as unknown[];
  if (kind === undefined) throw new InvalidParamsError('missing subscription kind');
  if (typeof kind !== 'string' || !isKind(kind)) {
    throw new InvalidParamsError(
      `unsupported subscription kind ${preview(kind)}; expected one of ${subscriptionKinds.map((k) => `"${k}"`).join(', ')}`,
    );
  }

  switch (kind) {
    case 'newHeads':
    case 'syncing':
      if (rest.length > 0) throw new InvalidParamsError(`${kind} subscriptions take no further params`);
      return { kind, fingerprint: kind, streamKey: kind, upstreamParams: [kind] };

    case 'newPendingTransactions': {
      if (rest.length > 1) throw new InvalidParamsError('newPendingTransactions takes at most one more param (a boolean)');
      const [full = null] = rest;
      if (full !== null && typeof full !== 'boolean') {
        throw new InvalidParamsError(`newPendingTransactions param must be a boolean (full transactions), got ${preview(full)}`);
      }
      // Sent only when true: nodes without full-transaction support still accept the plain form.
      return full === true
        ? { kind, fullTransactions: true, fingerprint: `${kind}:true`, streamKey: `${kind}:true`, upstreamParams: [kind, true] }
        : { kind, fullTransactions: false, fingerprint: kind, streamKey: kind, upstreamParams: [kind] };
    }

    case 'logs': {
      if (rest.length > 1) throw new InvalidParamsError('logs takes at most one more param (the filter object)');
      const { filter, blocks } = parseLogFilter(rest[0] ?? null, limits);
      const streamKey = `logs:${JSON.stringify(filter)}`;
      const spec: SubscriptionSpec = {
        kind,
        filter,
        fingerprint: blocks === undefined ? streamKey : `${streamKey}:blocks:${blocks.from ?? ''}-${blocks.to ?? ''}`,
        streamKey,
        // geth requires the filter argument, so an empty object is sent rather than nothing.
        upstreamParams: ['logs', compactFilter(filter)],
      };
      if (blocks !== undefined) spec.blocks = blocks;
      return spec;
    }
  }
}

function parseLogFilter(raw: unknown, limits: FilterLimits): { filter: LogFilter; blocks?: BlockBounds } {
  if (raw === null) return { filter: {} };
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new InvalidParamsError(`logs filter must be an object, got ${preview(raw)}`);
  }
  const record = raw as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (blockRangeKeys.includes(key)) {
      const block = record[key];
      if (block !== null && (typeof block !== 'string' || (!quantityPattern.test(block) && blockTag(block) === undefined))) {
        throw new InvalidParamsError(`logs filter ${key} must be a 0x-prefixed block number or a block tag, got ${preview(block)}`);
      }
    } else if (key !== 'address' && key !== 'topics') {
      throw new InvalidParamsError(
        `unsupported logs filter key ${preview(key)}; a logs subscription accepts "address", "topics", "fromBlock" and "toBlock"`,
      );
    }
  }
  // From block 0 bounds nothing: one topic with the filter that has no fromBlock.
  const from = boundOf(record['fromBlock']) || undefined;
  const to = boundOf(record['toBlock']);
  if (from !== undefined && to !== undefined && to < from) {
    throw new InvalidParamsError(`logs filter fromBlock ${from} is after toBlock ${to}`);
  }
  let blocks: BlockBounds | undefined;
  if (from !== undefined) blocks = { from };
  if (to !== undefined) (blocks ??= {}).to = to;
  // Key order is fixed here because the fingerprint is JSON.stringify of this object.
  const filter: LogFilter = {};
  const address = parseAddresses(record['address'] ?? null, limits);
  if (address.length > 0) filter.address = address;
  const topics = parseTopics(record['topics'] ?? null, limits);
  if (topics.length > 0) filter.topics = topics;
  return blocks === undefined ? { filter } : { filter, blocks };
}

/**
 * A fromBlock or toBlock as the node bounds a subscription by it: a block number, `earliest` as
 * block 0 (a `toBlock` of it delivers nothing once block 0 is past); other tags bound nothing.
 */
function boundOf(value: unknown): bigint | undefined {
  return blockNumber(value) ?? (blockTag(value) === 'earliest' ? 0n : undefined);
}

/** Whether a subscription bounded by `blocks` delivers the logs of block `number`. */
export function withinBlocks(blocks: BlockBounds | undefined, number: bigint): boolean {
  return blocks === undefined || ((blocks.from === undefined || number >= blocks.from) && (blocks.to === undefined || number <= blocks.to));
}

function parseAddresses(raw: unknown, limits: FilterLimits): string[] {
  if (raw === null) return [];
  const list = typeof raw === 'string' ? [raw] : raw;
  if (!Array.isArray(list)) throw new InvalidParamsError(`logs filter address must be a string or an array, got ${preview(raw)}`);
  // Checked before de-duplication so that a huge list is refused before any work is done on it.
  if (list.length > limits.maxAddresses) throw tooManyAddresses('logs filter', list.length, limits);
  const addresses = list.map((item: unknown, index) => {
    if (typeof item !== 'string' || !addressPattern.test(item)) {
      const where = typeof raw === 'string' ? 'logs filter address' : `logs filter address[${index}]`;
      throw new InvalidParamsError(`${where} must be a 20-byte 0x-prefixed hex string, got ${preview(item)}`);
    }
    return item.toLowerCase();
  });
  return sortedUnique(addresses);
}

function parseTopics(raw: unknown, limits: FilterLimits): (string[] | null)[] {
  if (raw === null) return [];
  if (!Array.isArray(raw)) throw new InvalidParamsError(`logs filter topics must be an array, got ${preview(raw)}`);
  if (raw.length > maxTopicPositions) {
    throw new InvalidParamsError(`logs filter has ${raw.length} topic positions; at most ${maxTopicPositions} are allowed`);
  }
  return raw.map((position: unknown, index) => parseTopicPosition(position, index, limits));
}

function parseTopicPosition(raw: unknown, index: number, limits: FilterLimits): string[] | null {
  if (raw === null) return null;
  if (typeof raw === 'string') return [parseTopic(raw, `logs filter topics[${index}]`)];
  if (!Array.isArray(raw)) {
    throw new InvalidParamsError(`logs filter topics[${index}] must be null, a topic or an array of topics, got ${preview(raw)}`);
  }
  if (raw.length > limits.maxTopicsPerPosition) throw tooManyAlternatives(`logs filter topics[${index}]`, raw.length, limits);
  const alternatives: string[] = [];
  let wildcard = raw.length === 0;
  for (const [inner, item] of (raw as unknown[]).entries()) {
    // Validate every entry even when a null already makes the position a wildcard.
    if (item === null) wildcard = true;
    else alternatives.push(parseTopic(item, `logs filter topics[${index}][${inner}]`));
  }
  return wildcard ? null : sortedUnique(alternatives);
}

function parseTopic(raw: unknown, where: string): string {
  if (typeof raw !== 'string' || !topicPattern.test(raw)) {
    throw new InvalidParamsError(`${where} must be a 32-byte 0x-prefixed hex string, got ${preview(raw)}`);
  }
  return raw.toLowerCase();
}

/**
 * The size limits of a logs filter, held for the filter of `eth_newFilter` and `eth_getLogs` too
 * (whose other fields the node checks): evmux keeps a filter's params for as long as the filter
 * lives, and a node matches every log against each address and topic. Throws InvalidParamsError.
 */
export function checkFilterSize(method: string, filter: unknown, limits: FilterLimits): void {
  if (filter === null || typeof filter !== 'object') return;
  const { address, topics } = filter as Record<string, unknown>;
  if (Array.isArray(address) && address.length > limits.maxAddresses) throw tooManyAddresses(`${method}: filter`, address.length, limits);
  if (!Array.isArray(topics)) return;
  for (const [index, position] of topics.entries()) {
    if (Array.isArray(position) && position.length > limits.maxTopicsPerPosition) {
      throw tooManyAlternatives(`${method}: filter topics[${index}]`, position.length, limits);
    }
  }
}

function tooManyAddresses(what: string, count: number, limits: FilterLimits): InvalidParamsError {
  return new InvalidParamsError(`${what} has ${count} addresses; the limit is ${limits.maxAddresses} (limits.maxFilterAddresses)`);
}

function tooManyAlternatives(what: string, count: number, limits: FilterLimits): InvalidParamsError {
  return new InvalidParamsError(`${what} has ${count} alternatives; the limit is ${limits.maxTopicsPerPosition} (limits.maxFilterTopicsPerPosition)`);
}

/** The form sent upstream: single addresses and single-topic positions as plain strings. */
function compactFilter(filter: LogFilter): Record<string, unknown> {
  const compact: Record<string, unknown> = {};
  if (filter.address !== undefined) compact['address'] = filter.address.length === 1 ? filter.address[0] : filter.address;
  if (filter.topics !== undefined) {
    compact['topics'] = filter.topics.map((position) => (position !== null && position.length === 1 ? position[0] : position));
  }
  return compact;
}

function sortedUnique(values: string[]): string[] {
  return [...new Set(values)].sort();
}

function isKind(value: string): value is SubscriptionKind {
  return (subscriptionKinds as readonly string[]).includes(value);
}

/** A short, safe rendering of a client value for an error message. */
function preview(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
