/**
 * Keccak-256 of hex data, from @noble/hashes' SHA-3 module alone (the hash viem uses): importing
 * viem for it put 6.6 MB of heap into every gateway process.
 */
import { keccak_256 } from '@noble/hashes/sha3';

/** The bytes of `0x`-prefixed hex the caller has checked (even length, hex digits only). */
export function hexBytes(hex: string): Uint8Array {
  return Buffer.from(hex.slice(2), 'hex');
}

/** Keccak-256 of the bytes of checked `0x`-prefixed hex. */
export function keccak(hex: string): Uint8Array {
  return keccak_256(hexBytes(hex));
}

/** Keccak-256 of the bytes of checked `0x`-prefixed hex, as `0x`-prefixed hex (a transaction's hash). */
export function keccakHex(hex: string): string {
  return `0x${Buffer.from(keccak(hex)).toString('hex')}`;
}
