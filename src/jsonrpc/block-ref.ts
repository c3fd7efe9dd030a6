/**
 * Block numbers and tags as clients write them in params (`"0x1b4"`, `"latest"`), read the way the
 * nodes read them: hex after `0x` or `0X` (geth's hexutil and alloy take both), and tags in any case
 * (alloy-based nodes, anvil and reth, take `"Pending"` as `"pending"`; geth only lower case). What a
 * node would take, evmux must read as the node does: a bound or tag it misread would change what
 * the client gets after a move, or which node serves it.
 */

export const BLOCK_TAGS = ['earliest', 'latest', 'pending', 'safe', 'finalized'] as const;
export type BlockTag = (typeof BLOCK_TAGS)[number];

const NUMBER = /^0[xX][0-9a-fA-F]{1,16}$/;

/** A block number written as hex (at most 64 bits); undefined for a tag or anything else. */
export function blockNumber(value: unknown): bigint | undefined {
  // Tags are the usual value: their second character is not an x, so they skip the pattern.
  if (typeof value !== 'string' || (value.charCodeAt(1) | 0x20) !== 0x78 /* x or X */ || !NUMBER.test(value)) return undefined;
  return BigInt(`0x${value.slice(2)}`);
}

/** A block tag in any case, as its lower-case name; undefined for a number or anything else. */
export function blockTag(value: unknown): BlockTag | undefined {
  if (typeof value !== 'string' || value.length > 9) return undefined;
  const lower = value.toLowerCase();
  return BLOCK_TAGS.find((tag) => tag === lower);
}
