/** Block headers as evmux tracks them: hex fields parsed once where it needs them. */

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

const HASH = /^0x[0-9a-fA-F]{64}$/;

/** Validate and lift a header object; throws naming the bad field. */
export function toTrackedHead(raw: unknown): TrackedHead {
  if (raw === null || typeof raw !== 'object') throw new Error('header is not an object');
  const object = raw as Record<string, unknown>;
  const { number, hash, parentHash } = object;
  if (typeof number !== 'string' || !/^0x[0-9a-fA-F]+$/.test(number)) throw new Error('header.number is not a hex quantity');
  if (typeof hash !== 'string' || !HASH.test(hash)) throw new Error('header.hash is not a 32-byte hex');
  if (typeof parentHash !== 'string' || !HASH.test(parentHash)) throw new Error('header.parentHash is not a 32-byte hex');
  return { number: BigInt(number), hash: hash.toLowerCase(), parentHash: parentHash.toLowerCase(), raw: object };
}
