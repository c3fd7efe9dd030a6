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
  | 'EVMUX_QUEUE_FULL'
  | 'EVMUX_BAD_FRAME'
  | 'EVMUX_CIRCUIT_OPEN';

export class UpstreamFailure extends Error {
  override name = 'UpstreamFailure';
  constructor(
    readonly code: UpstreamFailureCode,
    message: string,
    readonly upstream: string,
  ) {
    super(message);
  }
}
