/** Block headers as evmux tracks them: hex fields parsed once where it needs them. */
import { isHash, quantity } from '../jsonrpc/hex.js';

export interface Head {
  number: bigint;
  hash: string;
  parentHash: string;
}

/** A header as a node sent it, with the three fields evmux reasons about parsed out. */
export interface TrackedHead extends Head {
  /** the header object exactly as received, forwarded to clients */
  raw: Record<string, unknown>;
}

/** Validate and lift a header object; throws naming the bad field. */
export function toTrackedHead(raw: unknown): TrackedHead {
  if (raw === null || typeof raw !== 'object') throw new Error('header is not an object');
  const object = raw as Record<string, unknown>;
  const { number, hash, parentHash } = object;
  const height = quantity(number);
  if (height === undefined) throw new Error('header.number is not a hex quantity');
  if (!isHash(hash)) throw new Error('header.hash is not a 32-byte hex');
  if (!isHash(parentHash)) throw new Error('header.parentHash is not a 32-byte hex');
  return { number: height, hash: hash.toLowerCase(), parentHash: parentHash.toLowerCase(), raw: object };
}
