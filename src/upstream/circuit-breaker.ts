/**
 * Circuit breaker for one upstream: after `failureThreshold` consecutive failures it opens and the
 * balancer stops sending that node calls; after `openMs` it lets `halfOpenTrials` trial calls
 * through (half-open) and closes on the first success or opens again on a failure.
 *
 * Time comes from an injected clock and nothing runs on a timer: the open → half-open move happens
 * when someone next reads `state` or calls `tryAcquire()`, so the breaker owns no resources and
 * tests drive it by moving the clock.
 *
 * Decisions worth knowing:
 * - Results recorded while open are ignored. They belong to calls sent before it opened; one late
 *   success must not close a breaker that just saw `failureThreshold` failures in a row.
 * - In half-open any recorded result decides, trial or not (the breaker hands out no tokens).
 * - A trial whose result is never recorded would otherwise leave the breaker half-open with no
 *   slots forever; when all slots have been taken for `openMs`, a new round of trials is allowed.
 */
import { performance } from 'node:perf_hooks';

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  /** consecutive failures that open it @default 5 */
  failureThreshold: number;
  /** how long it stays open before a half-open trial @default 5000 */
  openMs: number;
  /** trial requests let through while half-open @default 1 */
  halfOpenTrials: number;
}

export const defaultBreakerOptions: Readonly<BreakerOptions> = Object.freeze({
  failureThreshold: 5,
  openMs: 5_000,
  halfOpenTrials: 1,
});

export class CircuitBreaker {
  readonly #options: BreakerOptions;
  readonly #now: () => number;
  readonly #onStateChange: ((state: BreakerState) => void) | undefined;
  #state: BreakerState = 'closed';
  /** consecutive failures while closed */
  #failures = 0;
  #openedAt = 0;
  /** trial slots handed out in the current half-open round */
  #trials = 0;
  #trialRoundStartedAt = 0;

  constructor(
    options: Partial<BreakerOptions> = {},
    now: () => number = () => performance.now(),
    onStateChange?: (state: BreakerState) => void,
  ) {
    const resolved = { ...defaultBreakerOptions, ...options };
    const { failureThreshold, openMs, halfOpenTrials } = resolved;
    if (!Number.isInteger(failureThreshold) || failureThreshold < 1) {
      throw new RangeError(`failureThreshold must be an integer >= 1, got ${failureThreshold}`);
    }
    if (!Number.isFinite(openMs) || openMs < 0) throw new RangeError(`openMs must be a finite number >= 0, got ${openMs}`);
    if (!Number.isInteger(halfOpenTrials) || halfOpenTrials < 1) {
      throw new RangeError(`halfOpenTrials must be an integer >= 1, got ${halfOpenTrials}`);
    }
    this.#options = resolved;
    this.#now = now;
    this.#onStateChange = onStateChange;
  }

  /** Reading it moves open → half-open once openMs has elapsed. */
  get state(): BreakerState {
    this.#halfOpenIfDue();
    return this.#state;
  }

  /** true if a request may be sent now (in half-open, reserves one trial slot) */
  tryAcquire(): boolean {
    this.#halfOpenIfDue();
    switch (this.#state) {
      case 'closed':
        return true;
      case 'open':
        return false;
      case 'half-open': {
        const now = this.#now();
        if (this.#trials >= this.#options.halfOpenTrials) {
          if (now - this.#trialRoundStartedAt < this.#options.openMs) return false;
          // Every slot of the last round went unanswered for openMs: start a new round.
          this.#trials = 0;
        }
        if (this.#trials === 0) this.#trialRoundStartedAt = now;
        this.#trials++;
        return true;
      }
    }
  }

  /** half-open success → closed; closed: resets the failure count */
  recordSuccess(): void {
    if (this.#state === 'half-open') this.#transition('closed');
    else if (this.#state === 'closed') this.#failures = 0;
  }

  /** closed: counts toward failureThreshold; half-open failure → open again */
  recordFailure(): void {
    if (this.#state === 'half-open') {
      this.#open();
    } else if (this.#state === 'closed') {
      this.#failures++;
      if (this.#failures >= this.#options.failureThreshold) this.#open();
    }
  }

  #open(): void {
    this.#openedAt = this.#now();
    this.#transition('open');
  }

  #halfOpenIfDue(): void {
    if (this.#state === 'open' && this.#now() - this.#openedAt >= this.#options.openMs) {
      this.#trials = 0;
      this.#transition('half-open');
    }
  }

  #transition(state: BreakerState): void {
    this.#state = state;
    this.#failures = 0;
    this.#onStateChange?.(state);
  }
}
