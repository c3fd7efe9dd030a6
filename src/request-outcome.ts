/**
 * What an attempt on a node that got no reply counts as in the per-call metrics
 * (evmux_requests_total), for clients' calls (call-router.ts) and the calls evmux's streams make
 * (stream-calls.ts) alike.
 */
import { mayHaveReachedNode } from './router/retry-policy.js';
import { isAnswerTooLarge, UpstreamFailure } from './upstream/errors.js';
import type { RequestOutcome } from './telemetry.js';

/**
 * A call refused before it left evmux (no socket, breaker open, the node's queue full, or timed out
 * in it) is `rejected`, not a transport error: counted as one, a node that was only busy looked
 * like a broken network. An answer over limits.maxAnswerBytes is `too_large`: the node answered,
 * and every node would send the same, so it is neither the node's failure nor its latency.
 */
export function failedOutcome(error: unknown): RequestOutcome {
  if (!(error instanceof UpstreamFailure)) return 'transport_error';
  if (!mayHaveReachedNode(error)) return 'rejected';
  if (error.code === 'EVMUX_TIMEOUT') return 'timeout';
  return isAnswerTooLarge(error) ? 'too_large' : 'transport_error';
}
