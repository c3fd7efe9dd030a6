/**
 * Which block a read needs the serving node to have. A client that just got head N from its
 * subscription and asks for block N must not be sent to a node that is one block behind and would
 * answer null: nodes within the lag limit are usable, but not all of them have every block yet.
 */
import { blockNumber, blockTag } from '../jsonrpc/block-ref.js';
import { isHash } from '../jsonrpc/hex.js';

/** Position of the block parameter for methods that take one. */
const BLOCK_PARAM: Readonly<Record<string, number>> = {
  eth_getBlockByNumber: 0,
  eth_getBlockTransactionCountByNumber: 0,
  eth_getTransactionByBlockNumberAndIndex: 0,
  eth_getUncleByBlockNumberAndIndex: 0,
  eth_getUncleCountByBlockNumber: 0,
  eth_getBlockReceipts: 0,
  eth_getBalance: 1,
  eth_getCode: 1,
  eth_getTransactionCount: 1,
  eth_call: 1,
  eth_estimateGas: 1,
  eth_createAccessList: 1,
  eth_feeHistory: 1,
  eth_getStorageAt: 2,
  eth_getProof: 2,
};

/** Methods whose null answer may just mean "this node has not seen it yet". */
const NULL_MAY_BE_LAG = new Set([
  'eth_getBlockByNumber',
  'eth_getBlockByHash',
  'eth_getBlockReceipts',
  'eth_getTransactionByHash',
  'eth_getTransactionReceipt',
  'eth_getTransactionByBlockHashAndIndex',
  'eth_getTransactionByBlockNumberAndIndex',
  'eth_getBlockTransactionCountByHash',
  'eth_getBlockTransactionCountByNumber',
  'eth_getUncleCountByBlockHash',
  'eth_getUncleCountByBlockNumber',
]);

/**
 * How nodes say they do not have the block a read names: geth's "header not found" (by number) and
 * "header for hash not found" (an EIP-1898 { blockHash }), "unknown block", Besu's, Erigon's and
 * reth's "block not found", Nethermind's "could not be found", anvil's -32001 "Resource not found"
 * (by hash) and -32602 "BlockOutOfRangeError: block height is 9 but requested was 10".
 */
const BLOCK_MISSING = /header (for hash )?not found|unknown block|block not found|could not be found|resource not found|block height is \d+ but requested was \d+/i;

function blockNumberOf(value: unknown): bigint | undefined {
  if (typeof value === 'string') return blockNumber(value);
  // EIP-1898 block object: { blockNumber } (a blockHash cannot be checked against a height)
  if (value !== null && typeof value === 'object' && 'blockNumber' in value) return blockNumberOf((value as { blockNumber: unknown }).blockNumber);
  return undefined;
}

/** The lowest head a node must have to answer this read, when the read names a block number. */
export function requiredBlock(method: string, params: unknown): bigint | undefined {
  if (!Array.isArray(params)) return undefined;
  if (method === 'eth_getLogs') {
    const filter = params[0] as { fromBlock?: unknown; toBlock?: unknown } | undefined;
    if (filter === null || typeof filter !== 'object') return undefined;
    // Up to "latest" (a tag, or no toBlock): the node with the highest head (CallRouter's pick).
    return blockNumberOf(filter.toBlock);
  }
  const index = BLOCK_PARAM[method];
  return index === undefined ? undefined : blockNumberOf(params[index]);
}

/**
 * Position of the block hash for methods that name a block by hash only, or (eth_getLogs) in an
 * object that may; those that take any block (BLOCK_PARAM) may name one by hash too (EIP-1898).
 */
const BLOCK_HASH_PARAM: Readonly<Record<string, number>> = {
  eth_getBlockByHash: 0,
  eth_getBlockTransactionCountByHash: 0,
  eth_getTransactionByBlockHashAndIndex: 0,
  eth_getUncleByBlockHashAndIndex: 0,
  eth_getUncleCountByBlockHash: 0,
  eth_getLogs: 0,
};

/** Whether a read of this method may name a block by its hash: only then are its params looked at (namedBlockHash). */
export function mayNameBlockHash(method: string): boolean {
  return BLOCK_HASH_PARAM[method] !== undefined || BLOCK_PARAM[method] !== undefined;
}

/**
 * The hash of the block a read names by hash (a hash, or an EIP-1898 or eth_getLogs `{ blockHash }`),
 * in lower case; undefined for a read that names a block by number or tag, or none.
 */
export function namedBlockHash(method: string, params: unknown): string | undefined {
  const index = BLOCK_HASH_PARAM[method] ?? BLOCK_PARAM[method];
  if (index === undefined || !Array.isArray(params)) return undefined;
  const block: unknown = params[index];
  const hash: unknown = block !== null && typeof block === 'object' ? (block as { blockHash?: unknown }).blockHash : block;
  return isHash(hash) ? hash.toLowerCase() : undefined;
}

/**
 * Reads a node runs against its "pending" state when they name no block: geth's and Erigon's
 * eth_estimateGas and eth_createAccessList, and anvil's. ethers and most dapps name none, so a gas
 * estimate after the client's own approve was answered "execution reverted" by the nodes without it.
 */
const PENDING_WHEN_UNNAMED = new Set(['eth_estimateGas', 'eth_createAccessList']);

/**
 * The read names the "pending" block, whose state is the node's transaction pool's (or names none,
 * and its nodes read that as pending): a client's reads of it follow its writer node, as its
 * pending nonce does (CallRouter).
 */
export function namesPendingBlock(method: string, params: unknown): boolean {
  const index = BLOCK_PARAM[method];
  if (index === undefined || !Array.isArray(params)) return false;
  const block: unknown = params[index];
  return block === undefined || block === null ? PENDING_WHEN_UNNAMED.has(method) : blockTag(block) === 'pending';
}

/** A null answer to this method is worth asking a node further ahead. */
export function nullMayBeLag(method: string): boolean {
  return NULL_MAY_BE_LAG.has(method);
}

/**
 * Reads whose null, for a height some node has reported, can only mean the serving node lacks that
 * block: worth asking again shortly. (A null from eth_getTransactionByBlockNumberAndIndex may just
 * be an index past the block's transactions.)
 */
const NULL_MEANS_BLOCK_MISSING = new Set(['eth_getBlockByNumber', 'eth_getBlockReceipts']);

export function nullMeansBlockMissing(method: string): boolean {
  return NULL_MEANS_BLOCK_MISSING.has(method);
}

/**
 * A node's error to a read of one block that may only mean the node has not got that block yet (it
 * lags, by a block or a few): worth asking a node known to be further ahead. So is its refusal of
 * a logs filter from a block past its head (anvil's; geth takes it): the head a client was just
 * told of ("watch from now").
 */
export function blockMissingMayBeLag(method: string, error: { message: string }): boolean {
  return (BLOCK_PARAM[method] !== undefined || NULL_MAY_BE_LAG.has(method) || method === 'eth_getLogs' || method === 'eth_newFilter') && BLOCK_MISSING.test(error.message);
}
