/**
 * The hex values of the Ethereum JSON-RPC API that evmux reads itself (block numbers, chain ids,
 * log indexes, hashes), checked one way wherever they are read.
 */

const QUANTITY = /^0x[0-9a-fA-F]{1,64}$/;
const HASH = /^0x[0-9a-fA-F]{64}$/;

/** A hex quantity (at most 256 bits) as a bigint; undefined for anything else. */
export function quantity(value: unknown): bigint | undefined {
  return typeof value === 'string' && QUANTITY.test(value) ? BigInt(value) : undefined;
}

/** Whether `value` is a 32-byte hash written as 0x hex (either case). */
export function isHash(value: unknown): value is string {
  return typeof value === 'string' && HASH.test(value);
}
