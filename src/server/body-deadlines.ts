/**
 * Deadlines for HTTP request bodies still arriving. uWebSockets.js closes a connection only when
 * it sends under 16 KB in 10 s, so a client sending a 5 MiB body at 2 KB/s could hold its
 * connection, and the body so far, for 45 minutes; a body not whole within
 * `limits.requestBodyTimeoutMs` of its first chunk is refused instead. One timer serves them all
 * and runs only while some body is incomplete: a body that arrives in one chunk, the usual case,
 * never comes here.
 */
import { performance } from 'node:perf_hooks';

export class BodyDeadlines<T> {
  readonly #timeoutMs: number;
  /** called once for a body whose deadline passed: refuse the request and close its connection */
  readonly #expired: (body: T) => void;
  readonly #sweepMs: number;
  /** when each began, in the order they began (a Map keeps insertion order) */
  readonly #began = new Map<T, number>();
  #timer: NodeJS.Timeout | undefined;

  constructor(timeoutMs: number, expired: (body: T) => void) {
    this.#timeoutMs = timeoutMs;
    this.#expired = expired;
    // A tenth of the deadline, at most a second late.
    this.#sweepMs = Math.max(10, Math.min(1000, timeoutMs / 10));
  }

  get size(): number {
    return this.#began.size;
  }

  watch(body: T): void {
    this.#began.set(body, performance.now());
    this.#timer ??= setInterval(() => this.#sweep(), this.#sweepMs);
  }

  done(body: T): void {
    if (this.#began.delete(body) && this.#began.size === 0) this.#stop();
  }

  close(): void {
    this.#began.clear();
    this.#stop();
  }

  #sweep(): void {
    const now = performance.now();
    for (const [body, began] of this.#began) {
      if (now - began < this.#timeoutMs) break;
      this.#began.delete(body);
      this.#expired(body);
    }
    if (this.#began.size === 0) this.#stop();
  }

  #stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
