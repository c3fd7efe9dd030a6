/**
 * Log shapes, log filters and the logs bloom for the synthetic chain. Pure functions only, so the
 * filter rules the fake node applies (eth_getLogs and logs subscriptions) are the same everywhere.
 */
import { hexToBytes, keccak256 } from 'viem';

export type Hex = `0x${string}`;

/** What a test supplies; everything block-related is filled in by the chain. */
export interface FakeLogInput {
  address: Hex;
  /** @default [] */
  topics?: Hex[];
  /** @default '0x' */
  data?: Hex;
  /** @default the log's index within its block */
  transactionIndex?: number;
}

/** A log as a node returns it (all quantities as 0x hex). */
export interface FakeLog {
  address: Hex;
  topics: Hex[];
  data: Hex;
  blockNumber: Hex;
  blockHash: Hex;
  transactionHash: Hex;
  transactionIndex: Hex;
  logIndex: Hex;
  removed: boolean;
}

/** The address/topics part of an eth_getLogs filter or a logs subscription. */
export interface LogCriteria {
  address?: Hex | Hex[] | null;
  topics?: (Hex | Hex[] | null)[] | null;
}

/** A full eth_getLogs filter. */
export interface LogFilter extends LogCriteria {
  fromBlock?: string;
  toBlock?: string;
  blockHash?: Hex;
}

const HEX_RE = /^0x[0-9a-fA-F]*$/;

function isHex(value: unknown): value is Hex {
  return typeof value === 'string' && HEX_RE.test(value);
}

function isHexOrHexList(value: unknown): boolean {
  return isHex(value) || (Array.isArray(value) && value.every(isHex));
}

/**
 * Validates the untyped filter object a client sent. Returns an error message instead of throwing
 * so the caller picks the JSON-RPC error code.
 */
export function parseLogFilter(value: unknown): LogFilter | string {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) return 'filter must be an object';
  const raw = value as Record<string, unknown>;
  if (raw['address'] !== undefined && raw['address'] !== null && !isHexOrHexList(raw['address'])) {
    return 'invalid address';
  }
  const topics = raw['topics'];
  if (topics !== undefined && topics !== null) {
    if (!Array.isArray(topics)) return 'topics must be an array';
    if (!topics.every((t) => t === null || isHexOrHexList(t))) return 'invalid topic';
  }
  for (const key of ['fromBlock', 'toBlock'] as const) {
    if (raw[key] !== undefined && typeof raw[key] !== 'string') return `invalid ${key}`;
  }
  if (raw['blockHash'] !== undefined && !isHex(raw['blockHash'])) return 'invalid blockHash';
  return raw as LogFilter;
}

/** Address and topic matching as geth does it: null or a missing position matches anything. */
export function logMatches(criteria: LogCriteria, log: Pick<FakeLog, 'address' | 'topics'>): boolean {
  const { address, topics } = criteria;
  if (address !== undefined && address !== null) {
    const wanted = (Array.isArray(address) ? address : [address]).map((a) => a.toLowerCase());
    if (wanted.length > 0 && !wanted.includes(log.address.toLowerCase())) return false;
  }
  if (topics !== undefined && topics !== null) {
    if (topics.length > log.topics.length) return false;
    for (const [i, position] of topics.entries()) {
      if (position === null) continue;
      const options = (Array.isArray(position) ? position : [position]).map((t) => t.toLowerCase());
      if (options.length === 0) continue;
      const actual = log.topics[i];
      if (actual === undefined || !options.includes(actual.toLowerCase())) return false;
    }
  }
  return true;
}

/** The empty 2048-bit bloom, as blocks without logs carry it. */
export const EMPTY_BLOOM: Hex = `0x${'00'.repeat(256)}`;

/**
 * The real logs bloom (Yellow Paper M3:2048) so a client that skips blocks by bloom still sees
 * the fake's logs.
 */
export function logsBloom(logs: readonly Pick<FakeLog, 'address' | 'topics'>[]): Hex {
  if (logs.length === 0) return EMPTY_BLOOM;
  const bloom = new Uint8Array(256);
  const add = (value: Hex): void => {
    const hash = keccak256(hexToBytes(value), 'bytes');
    for (let i = 0; i < 6; i += 2) {
      const bit = (((hash[i] ?? 0) << 8) | (hash[i + 1] ?? 0)) & 2047;
      const index = 255 - (bit >> 3);
      bloom[index] = (bloom[index] ?? 0) | (1 << (bit & 7));
    }
  };
  for (const log of logs) {
    add(log.address);
    for (const topic of log.topics) add(topic);
  }
  return `0x${Buffer.from(bloom).toString('hex')}`;
}
