/**
 * The logs bloom of a block header, used to tell whether a block can hold logs matching a filter
 * without asking the node: a block whose bloom rules the filter out needs no eth_getLogs even when
 * no live log arrived for it. Blooms have false positives, never false negatives.
 */
import { Buffer } from 'node:buffer';
import { keccak_256 } from '@noble/hashes/sha3';
import type { LogFilter } from './subscription-params.js';

const BLOOM_BYTES = 256;
const BLOOM_HEX = /^0x[0-9a-fA-F]{512}$/;

/**
 * Per-filter bit positions: any address, and for each constrained topic position any topic. Each
 * list holds three bloom bit positions per address or topic (yellow paper, M3:2048), packed: a
 * filter of 1,000 addresses takes 6 KB here, where an array per address took 90 KB.
 */
export interface BloomQuery {
  addresses: Uint16Array;
  topics: Uint16Array[];
}

function bitsOf(values: readonly string[]): Uint16Array {
  const bits = new Uint16Array(values.length * 3);
  for (const [index, hex] of values.entries()) {
    const hash = keccak_256(Buffer.from(hex.slice(2), 'hex'));
    for (let i = 0; i < 3; i++) bits[index * 3 + i] = ((hash[2 * i]! << 8) | hash[2 * i + 1]!) & 2047;
  }
  return bits;
}

/** Each filter's bit positions, worked out once: a node's topics are made anew at every failover and move back. */
const queries = new WeakMap<LogFilter, BloomQuery>();

export function bloomQuery(filter: LogFilter): BloomQuery {
  let query = queries.get(filter);
  if (query === undefined) {
    query = {
      addresses: bitsOf(filter.address ?? []),
      topics: (filter.topics ?? []).filter((position): position is string[] => position !== null).map(bitsOf),
    };
    queries.set(filter, query);
  }
  return query;
}

/** Whether the bloom has all three bits of some entry of `bits`. */
function containsAny(bloom: Uint8Array, bits: Uint16Array): boolean {
  for (let at = 0; at < bits.length; at += 3) {
    if (isSet(bloom, bits[at]!) && isSet(bloom, bits[at + 1]!) && isSet(bloom, bits[at + 2]!)) return true;
  }
  return false;
}

function isSet(bloom: Uint8Array, bit: number): boolean {
  return (bloom[BLOOM_BYTES - 1 - (bit >> 3)]! & (1 << (bit & 7))) !== 0;
}

/**
 * False only when the bloom proves the block has no log matching the filter. A missing or
 * malformed bloom proves nothing.
 */
export function bloomMayMatch(logsBloom: unknown, query: BloomQuery): boolean {
  const bloom = parsedBloom(logsBloom);
  if (bloom === undefined) return true;
  if (bloom === EMPTY) return false;
  if (query.addresses.length > 0 && !containsAny(bloom, query.addresses)) return false;
  return query.topics.every((alternatives) => containsAny(bloom, alternatives));
}

/** A bloom with no bit set: no log in the block. */
const EMPTY = new Uint8Array(0);
/**
 * The last bloom parsed: every logs topic of a node asks about the same block in turn, and parsing
 * it for each (a regular expression over 514 characters, then the bytes) took up to a second a
 * block with 10,000 distinct filters.
 */
let lastText: string | undefined;
let lastBloom: Uint8Array | undefined;

/** The bloom's bytes, EMPTY when none is set, undefined when it is missing or malformed. */
function parsedBloom(logsBloom: unknown): Uint8Array | undefined {
  if (typeof logsBloom !== 'string') return undefined;
  if (logsBloom === lastText) return lastBloom;
  let bloom: Uint8Array | undefined;
  if (BLOOM_HEX.test(logsBloom)) {
    bloom = Buffer.from(logsBloom.slice(2), 'hex');
    if (bloom.every((byte) => byte === 0)) bloom = EMPTY;
  }
  lastText = logsBloom;
  lastBloom = bloom;
  return bloom;
}
