/**
 * Failures talking to an upstream node, with stable string codes (undici style). They never reach
 * a client as such: the call router retries them elsewhere or turns them into a JSON-RPC error.
 */

export type UpstreamFailureCode =
  | 'EVMUX_NOT_CONNECTED'
  | 'EVMUX_SOCKET_CLOSED'
  /** the node's answer to this call was over `limits.maxAnswerBytes` (and closed the socket) */
  | 'EVMUX_ANSWER_TOO_LARGE'
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

/** The node's answer was over limits.maxAnswerBytes: every node would send it, and close its socket on it. */
export function isAnswerTooLarge(error: unknown): boolean {
  return error instanceof UpstreamFailure && error.code === 'EVMUX_ANSWER_TOO_LARGE';
}
