/**
 * Retry rules as pure functions: what may be sent again to another node, and which node answers
 * are the node's fault (retry) versus the caller's (return as is).
 */
import type { JsonRpcErrorObject } from '../jsonrpc/errors.js';
import { isSocketGone, UpstreamFailure, type UpstreamFailureCode } from '../upstream/errors.js';

/**
 * Signed transactions: the same bytes sent to another node cannot make a second transaction, so
 * each node may be tried once (a node that timed out may still have taken it).
 */
const SIGNED_SENDS = new Set(['eth_sendRawTransaction', 'eth_sendRawTransactionConditional', 'eth_sendRawTransactionSync']);

export function isSignedSend(method: string): boolean {
  return SIGNED_SENDS.has(method);
}

/**
 * Writes whose effect evmux cannot look up afterwards: a transaction the node signs
 * (`eth_sendTransaction`), a bundle, a user operation, mined work. Sent again only when the try
 * before never reached a node: a second node would carry it out a second time.
 */
export function isWrite(method: string): boolean {
  return /^[a-z0-9]+_(send|submit|cancel)/i.test(method) && !SIGNED_SENDS.has(method);
}

/**
 * A failure after which the node may have got the call and carried it out (timed out, socket
 * closed under it, answer too large), as against one where it never left evmux.
 */
export function mayHaveReachedNode(error: UpstreamFailure): boolean {
  return !NEVER_SENT.has(error.code);
}

/** Failures of calls no node carried out: not sent, or (EVMUX_REQUEST_TOO_LARGE) refused unread. */
const NEVER_SENT: ReadonlySet<UpstreamFailureCode> = new Set(['EVMUX_NOT_CONNECTED', 'EVMUX_QUEUE_FULL', 'EVMUX_QUEUE_TIMEOUT', 'EVMUX_CIRCUIT_OPEN', 'EVMUX_REQUEST_TOO_LARGE']);

const FILTER_CREATORS = new Set(['eth_newFilter', 'eth_newBlockFilter', 'eth_newPendingTransactionFilter']);
const FILTER_USERS = new Set(['eth_getFilterChanges', 'eth_getFilterLogs', 'eth_uninstallFilter']);

export function isFilterCreator(method: string): boolean {
  return FILTER_CREATORS.has(method);
}

export function isFilterUser(method: string): boolean {
  return FILTER_USERS.has(method);
}

export function isFilterMethod(method: string): boolean {
  return FILTER_CREATORS.has(method) || FILTER_USERS.has(method);
}

/**
 * Node-side trouble by message. State a node no longer has is worded many ways, and an archive
 * node beside it has it: geth's "missing trie node" and, with the path scheme, "historical state
 * not available"; Nethermind's "No state available for block"; reth's "state at block #N is
 * pruned"; Erigon's "... is not available".
 */
const NODE_TROUBLE =
  /rate limit|too many requests|capacity|overload|timeout|timed out|internal error|try again|unavailable|not available|header not found|unknown block|missing trie node|pruned|no state|syncing/i;
/** The request itself is wrong: every node would say so. */
const CALLER_FAULT_CODES = new Set([3, -32600, -32602, -32700]);
/**
 * The method does not exist on this node. evmux refused the names it does not allow before any node
 * saw them, so this is the node's version speaking (a rolling upgrade, a mixed pool: geth before
 * 1.13 has no eth_getBlockReceipts): another node may have it.
 */
const METHOD_NOT_FOUND = -32601;

/** A node's JSON-RPC error: is it worth asking another node? */
export function isRetryableRpcError(error: JsonRpcErrorObject): boolean {
  if (CALLER_FAULT_CODES.has(error.code)) return false;
  if (error.code === METHOD_NOT_FOUND) return true;
  if (/revert|invalid|insufficient|nonce|underpriced|intrinsic gas|exceeds|not supported/i.test(error.message)) return false;
  // 429-style and 5xx-style answers under their common codes, and node-side trouble by message.
  if (error.code === -32005 || error.code === 429 || error.code === -32603 || (error.code >= -32099 && error.code <= -32000 && NODE_TROUBLE.test(error.message))) return true;
  return NODE_TROUBLE.test(error.message);
}

/**
 * The call met a socket evmux closed for another call's answer over `limits.maxAnswerBytes`: it was
 * in flight on it, or sent in the moment before it was back. Trying it again does not count as one
 * of its attempts: a client asking for such answers on every node would otherwise use up the
 * attempts of the calls beside it.
 */
export function isClosedUnderIt(error: unknown): boolean {
  return isSocketGone(error) && !error.blamesNode;
}

/**
 * eth_sendRawTransactionSync's answer when the node took the transaction but saw it mined in no
 * receipt within its own wait: EIP-7966's code 4 (timeout) and 5 (taken, not ready to run), and
 * anvil's -32603 "Transaction confirmation timeout". The node has it: sent on to another node, the
 * client was told "already imported" for its own transaction.
 */
export function isSyncWaitOver(error: JsonRpcErrorObject): boolean {
  return error.code === 4 || error.code === 5 || /confirmation timeout|added to the (mempool|transaction pool)/i.test(error.message);
}

/** A second node that already has the transaction means the first send worked. */
export function isAlreadyKnown(error: JsonRpcErrorObject): boolean {
  return /already known|known transaction|already imported|transaction already exists|alreadyknown/i.test(error.message);
}

/**
 * A second node refusing a signed transaction for its nonce: the nonce is taken, by this very
 * transaction when the first node passed it on before it timed out (mined, or waiting in the pool),
 * or by another. Which one, that node can say by the transaction's hash.
 */
export function isNonceTaken(error: JsonRpcErrorObject): boolean {
  return /nonce (is )?too low|nonce_too_low|oldnonce|replacement transaction underpriced|replacement_underpriced|replacement fee too low/i.test(error.message);
}

/**
 * A node's "no such filter" (it restarted, or let the filter expire): "filter not found" from geth
 * and anvil (Besu capitalises it), "Filter id 22 does not exist." from Frontier's chains, "Filter
 * with id: '5' does not exist." from Nethermind.
 */
export function isFilterGone(error: JsonRpcErrorObject): boolean {
  return /filter not found|filter (with )?id:? \S+ does not exist/i.test(error.message);
}
