/**
 * A node that answered with block N has N: noted as its head, as an answer to eth_blockNumber is
 * (Upstream.noteReportedHead). N is the block of an eth_getBlockByNumber answer (a client handed N
 * as "latest" that reads block N next is sent to a node that has it), or the last block of an
 * eth_getLogs answer, a receipt, or a logs filter's answer (an indexer or an event watcher that
 * reads a log's block and receipt by hash next is sent to a node known to have them, or gets a
 * second opinion from one when a node a block behind answers null). Not of a read of "pending":
 * that block is not on the chain yet.
 */
import type { Upstream } from '../upstream/upstream.js';
import { quantity } from '../jsonrpc/hex.js';
import { ParamsJson } from '../upstream/request-frame.js';
import { replyResult, type UpstreamReply } from '../upstream/reply.js';

export function noteAnsweredHead(upstream: Upstream, params: unknown, number: number | undefined): void {
  // The usual answer is the head already known: no bigint made for it, nor the params looked at.
  if (number === undefined || number <= Number(upstream.headNumber) || PENDING.test(paramsText(params))) return;
  upstream.noteReportedHead(BigInt(number));
}

/**
 * Methods whose answer's last `blockNumber` is a block the node has: the highest of eth_getLogs's
 * logs, a receipt's, a block's receipts', a transaction's found by block and index. Left out, a
 * client handed `latest` by eth_getBlockReceipts and reading that block next was sent to a node a
 * block behind, and answered null.
 */
export const LAST_BLOCK_NUMBER_TELLS: ReadonlySet<string> = new Set([
  'eth_getLogs',
  'eth_getTransactionReceipt',
  'eth_getBlockReceipts',
  'eth_getTransactionByBlockNumberAndIndex',
]);

/** The newest block of an eth_feeHistory answer: its oldestBlock and one per gasUsedRatio entry. */
export function feeHistoryNewest(reply: UpstreamReply): number | undefined {
  try {
    const { oldestBlock, gasUsedRatio } = (replyResult(reply) ?? {}) as { oldestBlock?: unknown; gasUsedRatio?: unknown };
    const oldest = quantity(oldestBlock);
    if (oldest === undefined || !Array.isArray(gasUsedRatio) || gasUsedRatio.length === 0) return undefined;
    return Number(oldest) + gasUsedRatio.length - 1;
  } catch {
    return undefined;
  }
}

/**
 * The highest block of the logs in a logs filter's answer that are on the chain: not of a removed
 * log, whose block a reorg took away (to a shorter branch, one past the node's head now).
 */
export function highestLogBlock(logs: readonly unknown[]): number | undefined {
  let highest = -1n;
  for (const log of logs) {
    const { blockNumber, removed } = (log ?? {}) as { blockNumber?: unknown; removed?: unknown };
    const number = removed === true ? undefined : quantity(blockNumber);
    if (number !== undefined && number > highest) highest = number;
  }
  return highest < 0n ? undefined : Number(highest);
}

/** The pending tag in any case, as alloy-based nodes read it ("Pending" is the pending block on anvil). */
const PENDING = /pending/i;

/** The params as the client wrote them, or (parsed) their first string, or JSON of their first object: enough to look for a "pending" tag. */
function paramsText(params: unknown): string {
  if (params instanceof ParamsJson) return params.text;
  const first: unknown = Array.isArray(params) ? params[0] : undefined;
  if (typeof first === 'string') return first;
  return first !== null && typeof first === 'object' ? JSON.stringify(first) : '';
}
