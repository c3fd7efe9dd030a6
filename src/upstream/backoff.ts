/**
 * Reconnect delay: exponential backoff with full jitter.
 *
 * The delay for attempt n is uniform in [0, min(maxMs, baseMs * 2^n)]. Full jitter (rather than a
 * fixed or "equal jitter" delay) spreads the reconnects of many evmux replicas that lost the same
 * node at the same moment, so they do not hit it again in lockstep when it comes back. The cap keeps
 * the wait bounded: evmux reconnects forever, it never gives up on an upstream.
 */

export interface BackoffOptions {
  /** ceiling of the first retry's delay (attempt 0) */
  baseMs: number;
  /** the ceiling never grows past this */
  maxMs: number;
}

/**
 * Delay in whole milliseconds before retry number `attempt` (0 for the first retry).
 * `random` returns a number in [0, 1), like Math.random; tests pass their own.
 */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const { baseMs, maxMs } = options;
  if (!(baseMs >= 0 && Number.isFinite(baseMs))) throw new RangeError(`baseMs must be a finite number >= 0, got ${baseMs}`);
  if (!(maxMs >= 0 && Number.isFinite(maxMs))) throw new RangeError(`maxMs must be a finite number >= 0, got ${maxMs}`);
  // Clamp the exponent: 2^1023 is the largest finite power, and 0 * Infinity would be NaN.
  const exponent = Math.min(1023, Math.max(0, Math.floor(Number.isNaN(attempt) ? 0 : attempt)));
  const ceiling = Math.floor(Math.min(maxMs, baseMs * 2 ** exponent));
  // Scale by ceiling + 1 so that the ceiling itself is reachable after flooring.
  const drawn = random();
  const fraction = drawn > 0 ? Math.min(drawn, 1) : 0; // NaN and negatives count as 0
  return Math.min(ceiling, Math.floor(fraction * (ceiling + 1)));
}
