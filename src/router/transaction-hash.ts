/**
 * The hash of a signed transaction as a client sends it. For most it is keccak-256 of its bytes; a
 * blob transaction (EIP-4844, type 3) is sent in its network form, `0x03 || rlp([tx, blobs,
 * commitments, proofs])`, and its hash is that of the transaction alone, `0x03 || rlp(tx)`:
 * hashed whole, a node that had taken it ("already known") was answered for another hash, and the
 * lookups by hash found nothing.
 */
import { Buffer } from 'node:buffer';
import { keccak_256 } from '@noble/hashes/sha3';
import type { Hex } from 'viem';

const BLOB_TYPE = 0x03;

export function transactionHash(raw: Hex): Hex {
  const bytes = Buffer.from(raw.slice(2), 'hex');
  if (bytes[0] === BLOB_TYPE) {
    const wrapper = listAt(bytes, 1);
    // The canonical form's first item is the chain id, a string; the network form's, the transaction, a list.
    const tx = wrapper === undefined ? undefined : listAt(bytes, wrapper.payloadStart);
    if (wrapper !== undefined && tx !== undefined && wrapper.end === bytes.length && tx.end <= wrapper.end) {
      return hexOf(keccak_256(Buffer.concat([bytes.subarray(0, 1), bytes.subarray(wrapper.payloadStart, tx.end)])));
    }
  }
  return hexOf(keccak_256(bytes));
}

function hexOf(hash: Uint8Array): Hex {
  return `0x${Buffer.from(hash).toString('hex')}`;
}

/** The RLP list whose header is at `at`: where its payload starts and where it ends; undefined when there is none. */
function listAt(bytes: Buffer, at: number): { payloadStart: number; end: number } | undefined {
  const prefix = bytes[at];
  if (prefix === undefined || prefix < 0xc0) return undefined;
  if (prefix <= 0xf7) return { payloadStart: at + 1, end: at + 1 + prefix - 0xc0 };
  const lengthBytes = prefix - 0xf7;
  if (at + 1 + lengthBytes > bytes.length) return undefined;
  let length = 0;
  for (let i = 1; i <= lengthBytes; i++) length = length * 256 + bytes[at + i]!;
  return { payloadStart: at + 1 + lengthBytes, end: at + 1 + lengthBytes + length };
}
