/**
 * Failures talking to an upstream node, with stable string codes (undici style). They never reach
 * a client as such: the call router retries them elsewhere or turns them into a JSON-RPC error.
 */

export type UpstreamFailureCode =
  | 'EVMUX_NOT_CONNECTED'
  | 'EVMUX_SOCKET_CLOSED'
  /** the node's answer to this call was over `limits.maxAnswerBytes` (and closed the socket) */
  | 'EVMUX_ANSWER_TOO_LARGE'
  /** the node takes no request this large: it closed a socket on one (1009), so this one was not sent (frame-limit.ts) */
  | 'EVMUX_REQUEST_TOO_LARGE'
  | 'EVMUX_TIMEOUT'
  /** the call waited its whole timeout for a slot on a busy node, and was never sent */
  | 'EVMUX_QUEUE_TIMEOUT'
  | 'EVMUX_QUEUE_FULL'
  | 'EVMUX_CIRCUIT_OPEN';

export class UpstreamFailure extends Error {
  override name = 'UpstreamFailure';
  constructor(
    readonly code: UpstreamFailureCode,
    message: string,
    readonly upstream: string,
    /**
     * Whether it tells of the node's health, for its circuit breaker. Not when a call timed out
     * while the node went on answering others (a slow call), nor for an answer over
     * limits.maxAnswerBytes and the calls failed by the socket evmux closed for it: what one client
     * asks of a node must not take the node out of rotation for everyone.
     */
    readonly blamesNode = true,
  ) {
    super(message);
  }
}

/** The call failed for its node's sockets: closed under it, or none open when it went (a blip, a node going down). */
export function isSocketGone(error: unknown): error is UpstreamFailure {
  return error instanceof UpstreamFailure && (error.code === 'EVMUX_SOCKET_CLOSED' || error.code === 'EVMUX_NOT_CONNECTED');
}

/** The node's answer was over limits.maxAnswerBytes: every node would send it, and close its socket on it. */
export function isAnswerTooLarge(error: unknown): boolean {
  return error instanceof UpstreamFailure && error.code === 'EVMUX_ANSWER_TOO_LARGE';
}

/** A node's JSON-RPC error to a call evmux made for itself (Upstream.call), kept whole for whoever must tell errors apart. */
export class NodeRpcError extends Error {
  override name = 'NodeRpcError';
  constructor(
    message: string,
    readonly code: number,
    readonly nodeMessage: string,
  ) {
    super(message);
  }
}

/**
 * A node refusing an eth_getLogs range as more than it serves at once, in its own words: reth's
 * "query exceeds max results 20000, retry with the range A-B", geth's and providers' "query
 * returned more than 10000 results", Besu's "Requested range exceeds maximum range limit",
 * Nethermind's "Too many logs requested", Erigon's "block range too large", QuickNode's
 * "eth_getLogs and eth_newFilter are limited to a 10,000 blocks range" (5 on its free plans),
 * Alchemy's "You can make eth_getLogs requests with up to a 500 block range". Asked for fewer
 * blocks at a time, it answers.
 */
const LOGS_RANGE_REFUSED =
  /exceeds? (the )?max|response size (is )?exceed|more than \d+ (results|logs|blocks)|too many (logs|results|blocks)|range (is )?too (large|big|wide)|max(imum)? (results|block range|range|logs)|(limited to|up to) an? [\d,]+ (blocks? )?range/i;

export function isLogsRangeRefused(error: unknown): boolean {
  return error instanceof NodeRpcError && isLogsRangeRefusal(error.nodeMessage);
}

/** Whether a node's error message to eth_getLogs refuses the range as more than it serves at once. */
export function isLogsRangeRefusal(nodeMessage: string): boolean {
  return LOGS_RANGE_REFUSED.test(nodeMessage) && !RATE_LIMITED.test(nodeMessage);
}

/**
 * A provider's refusal for the rate of calls, not their range ("project ID request rate exceeded",
 * "exceeded its compute units per second capacity"): asked again later, the same range is
 * answered. Taken for a range refusal, a logs stream skipped the block's logs for good.
 */
const RATE_LIMITED = /\brate\b|too many requests|compute units|capacity|quota|credits/i;
