/**
 * How long a call may take: one attempt's timeout (requestTimeoutMs, or the method's own from
 * methods.timeoutMs) and the whole call's deadline with its retries (retry.deadlineMs, stretched to
 * fit one attempt of a method with its own timeout).
 */
import { performance } from 'node:perf_hooks';
import type { Config } from '../config/schema.js';

type Settings = Pick<Config, 'retry' | 'requestTimeoutMs' | 'methods'>;

export class MethodTimeouts {
  /** methods.timeoutMs: per-attempt timeouts of the methods that have their own */
  readonly #own: ReadonlyMap<string, number>;
  readonly #requestTimeoutMs: number;
  readonly #deadlineMs: number;

  constructor(settings: Settings) {
    this.#own = new Map(Object.entries(settings.methods.timeoutMs));
    this.#requestTimeoutMs = settings.requestTimeoutMs;
    this.#deadlineMs = settings.retry.deadlineMs;
  }

  /** One attempt's timeout: the method's own, else requestTimeoutMs. */
  timeoutOf(method: string): number {
    return this.#ownTimeout(method) ?? this.#requestTimeoutMs;
  }

  /** A call's time with its retries. */
  deadlineOf(method: string): number {
    const own = this.#ownTimeout(method);
    return own === undefined ? this.#deadlineMs : Math.max(own, this.#deadlineMs);
  }

  /** One more attempt's timeout before `deadline` (on the performance.now() clock): at least 1 ms. */
  timeLeft(method: string, deadline: number): number {
    return Math.max(1, Math.min(this.timeoutOf(method), deadline - performance.now()));
  }

  /** The settings that bound `method`'s time, with their values: for an error saying it ran out. */
  limitsOf(method: string): string {
    const own = this.#ownTimeout(method);
    if (own === undefined) return `requestTimeoutMs (${this.#requestTimeoutMs} ms) per try, retry.deadlineMs (${this.#deadlineMs} ms) in all`;
    // The deadline stretched to fit one try: the method's own timeout bounds it all.
    if (own >= this.#deadlineMs) return `methods.timeoutMs.${method} (${own} ms) per try and in all`;
    return `methods.timeoutMs.${method} (${own} ms) per try, retry.deadlineMs (${this.#deadlineMs} ms) in all`;
  }

  #ownTimeout(method: string): number | undefined {
    return this.#own.size === 0 ? undefined : this.#own.get(method);
  }
}
