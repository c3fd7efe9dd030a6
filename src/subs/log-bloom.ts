/**
 * The logs bloom of a block header, used to tell whether a block can hold logs matching a filter
 * without asking the node: a block whose bloom rules the filter out needs no eth_getLogs even when
 * no live log arrived for it. Blooms have false positives, never false negatives.
 */
import { hexToBytes, keccak256 } from 'viem';
import type { LogFilter } from './subscription-params.js';

const BLOOM_BYTES = 256;
const BLOOM_HEX = /^0x[0-9a-fA-F]{512}$/;

/** The three bloom bit positions of one address or topic (yellow paper, M3:2048). */
type BitSet = readonly [number, number, number];

/** Per-filter bit positions: any address, and for each constrained topic position any topic. */
export interface BloomQuery {
  addresses: BitSet[];
  topics: BitSet[][];
}

function bitsOf(hex: string): BitSet {
  const hash = hexToBytes(keccak256(hex as `0x${string}`));
  const bit = (i: number): number => ((hash[i]! << 8) | hash[i + 1]!) & 2047;
  return [bit(0), bit(2), bit(4)];
}

export function bloomQuery(filter: LogFilter): BloomQuery {
  return {
    addresses: (filter.address ?? []).map(bitsOf),
    topics: (filter.topics ?? []).filter((position): position is string[] => position !== null).map((position) => position.map(bitsOf)),
  };
}

function contains(bloom: Uint8Array, bits: BitSet): boolean {
  return bits.every((bit) => (bloom[BLOOM_BYTES - 1 - (bit >> 3)]! & (1 << (bit & 7))) !== 0);
}

/**
 * False only when the bloom proves the block has no log matching the filter. A missing or
 * malformed bloom proves nothing.
 */
export function bloomMayMatch(logsBloom: unknown, query: BloomQuery): boolean {
  if (typeof logsBloom !== 'string' || !BLOOM_HEX.test(logsBloom)) return true;
  const bloom = hexToBytes(logsBloom as `0x${string}`);
  if (bloom.every((byte) => byte === 0)) return false;
  if (query.addresses.length > 0 && !query.addresses.some((bits) => contains(bloom, bits))) return false;
  return query.topics.every((alternatives) => alternatives.some((bits) => contains(bloom, bits)));
}
