/** How a call ends when no node gave it a usable answer. */
import { UpstreamUnavailableError } from '../jsonrpc/errors.js';
import { UpstreamFailure } from '../upstream/errors.js';
import type { UpstreamReply } from '../upstream/reply.js';

/** A node's answer (an error it gave), as against a failure to get one. */
export function isReply(value: unknown): value is UpstreamReply {
  return typeof value === 'object' && value !== null && 'tail' in value;
}

/**
 * The last node's error answer as it is, else an error naming the last failure, and `timeLimits`
 * (the settings that bound the call's time, MethodTimeouts.limitsOf) when given.
 */
export function giveUp(method: string, lastError: unknown, timeLimits?: string): UpstreamReply {
  if (isReply(lastError)) return lastError;
  const detail = lastError instanceof UpstreamFailure ? `: last error ${lastError.code} (${lastError.message})` : ': no upstream available';
  throw new UpstreamUnavailableError(`${method} failed on every upstream tried${detail}${timeLimits === undefined ? '' : `; time allowed: ${timeLimits}`}`);
}

/** A failure for want of time: a try that timed out. */
export function isTimeout(error: unknown): boolean {
  return error instanceof UpstreamFailure && error.code === 'EVMUX_TIMEOUT';
}

/** A write that failed after a node may have got it: not sent again, and the client is told why. */
export function outcomeUnknown(method: string, error: UpstreamFailure): UpstreamUnavailableError {
  return new UpstreamUnavailableError(
    `${method}: ${error.message} (${error.code}); not sent to another node, since this one may have carried it out: check before sending it again`,
  );
}
