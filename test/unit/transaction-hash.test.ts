import assert from 'node:assert/strict';
import { test } from 'node:test';
import { commitmentToVersionedHash, keccak256, parseGwei, serializeTransaction, type Hex, type TransactionSerializableEIP4844 } from 'viem';
import { transactionHash } from '../../src/router/transaction-hash.js';

// A zero blob, whose commitment and proof are the point at infinity (compressed: 0xc0, then zeros).
const INFINITY: Hex = `0xc0${'00'.repeat(47)}`;
const sidecar = { blob: `0x${'00'.repeat(131_072)}` as Hex, commitment: INFINITY, proof: INFINITY };
const signature = { r: `0x${'11'.repeat(32)}` as Hex, s: `0x${'22'.repeat(32)}` as Hex, yParity: 1 };
const blobTx: TransactionSerializableEIP4844 = {
  type: 'eip4844',
  chainId: 31337,
  nonce: 7,
  gas: 21_000n,
  maxFeePerGas: parseGwei('20'),
  maxPriorityFeePerGas: parseGwei('1'),
  maxFeePerBlobGas: parseGwei('3'),
  to: '0x000000000000000000000000000000000000dEaD',
  blobVersionedHashes: [commitmentToVersionedHash({ commitment: INFINITY })],
};

test("a blob transaction sent in its network form (with blobs, commitments and proofs) has the transaction's own hash", () => {
  const canonical = serializeTransaction(blobTx, signature);
  const network = serializeTransaction({ ...blobTx, sidecars: [sidecar, sidecar] }, signature);
  assert.ok(network.length > 2 * 131_072 * 2, 'premise: the network form carries the blobs');
  assert.equal(transactionHash(network), keccak256(canonical));
  assert.equal(transactionHash(canonical), keccak256(canonical), 'the canonical form hashes as it is');
});

test('other transactions hash as their bytes', () => {
  const plain = serializeTransaction({ type: 'eip1559', chainId: 31337, nonce: 1, gas: 21_000n, maxFeePerGas: 1n, maxPriorityFeePerGas: 1n, to: '0x000000000000000000000000000000000000dEaD', value: 1n }, signature);
  assert.equal(transactionHash(plain), keccak256(plain));
  // Type 3 bytes that are no list at all, or a list cut short: hashed as they are.
  assert.equal(transactionHash('0x03ff'), keccak256('0x03ff'));
  assert.equal(transactionHash('0x03f90100c0'), keccak256('0x03f90100c0'));
});
