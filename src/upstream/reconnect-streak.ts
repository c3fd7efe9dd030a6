/**
 * When an upstream socket connects again, and what its failed attempts are logged as: exponential
 * backoff with full jitter, a node's Retry-After honoured, each reason for failing warned of once
 * per streak. A streak of failures ends once a socket has stayed open STABLE_AFTER_MS.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from '../log.js';
import { backoffDelay } from './backoff.js';

/** How long a socket must stay open before its node's reconnect backoff starts over. */
const STABLE_AFTER_MS = 2000;
/** Reasons a streak of failed connects remembers, to warn of each once. */
const MAX_STREAK_REASONS = 8;
/** How a socket that closed before STABLE_AFTER_MS is logged, as a failed connect attempt. */
export const CLOSED_AT_ONCE = 'closed right after opening';
/** Why a socket closed: the node's doing (`node`), or evmux's for a reason of its own (`own`). */
export type CloseCause = 'node' | 'own';

export class ReconnectStreak {
  readonly #reconnect: { baseMs: number; maxMs: number };
  readonly #logger: Logger;
  readonly #connect: () => void;
  readonly #random: () => number;
  /** reconnects since a socket last stayed open STABLE_AFTER_MS: the backoff's step */
  #attempt = 0;
  /** why the last connect attempt failed (or its socket closed right after opening); cleared once a socket stays open */
  #lastError: string | undefined;
  /** how long the node asked evmux to wait before connecting again (a Retry-After on a refused handshake) */
  #retryAfterMs: number | undefined;
  /** the reasons connect attempts failed for in this streak (at most MAX_STREAK_REASONS): each is warned of once */
  readonly #reasons = new Set<string>();
  /** runs out once a socket has stayed open STABLE_AFTER_MS, ending the streak */
  #stableTimer: NodeJS.Timeout | undefined;
  /** hurry() skipped a backoff in this streak */
  #hurried = false;
  /** when it last reconnected at once after a close of evmux's own (performance.now()) */
  #ownReconnectAt = -Infinity;
  #timer: NodeJS.Timeout | undefined;

  /** `random` draws the backoff's jitter (backoffDelay). */
  constructor(reconnect: { baseMs: number; maxMs: number }, logger: Logger, connect: () => void, random: () => number = Math.random) {
    this.#reconnect = reconnect;
    this.#logger = logger;
    this.#connect = connect;
    this.#random = random;
  }

  /**
   * A socket opened. Open is not up yet: a node that takes the handshake and closes at once (an API
   * key over its quota, a gateway with no backend) was reconnected to 35 times a second, forever,
   * with two log lines each. The streak ends once the socket stays open. Returns whether the
   * streak so far was of sockets closed right after opening (this open is then no news).
   */
  opened(): boolean {
    this.#stableTimer = setTimeout(() => {
      this.#stableTimer = undefined;
      this.#attempt = 0;
      this.#hurried = false;
      this.#lastError = undefined;
      this.#reasons.clear();
    }, STABLE_AFTER_MS);
    return this.#lastError?.startsWith(CLOSED_AT_ONCE) === true;
  }

  /** The open socket closed: whether it did so before it counted as stable. */
  closed(): boolean {
    const early = this.#stableTimer !== undefined;
    clearTimeout(this.#stableTimer);
    this.#stableTimer = undefined;
    return early;
  }

  /** The node refused the handshake asking to be left alone this long (Retry-After). */
  retryAfter(ms: number | undefined): void {
    this.#retryAfterMs = ms;
  }

  /**
   * A connect attempt failed (refused, timed out, handshake answered with 401 or 404). Each reason
   * is a warning the first time in a streak, so a wrong URL or credential shows in the log; repeats
   * while the node stays down are debug (a node that resets connections alternates between "socket
   * hang up" and "read ECONNRESET").
   */
  failed(reason: string, retryAfterMs?: number): void {
    const repeat = this.#reasons.has(reason);
    if (this.#reasons.size < MAX_STREAK_REASONS) this.#reasons.add(reason);
    this.#lastError = reason;
    this.#logger[repeat ? 'debug' : 'warn']({ err: reason, attempt: this.#attempt, ...(retryAfterMs !== undefined && { retryAfterMs }) }, 'upstream connect failed');
  }

  /**
   * Connect again after the backoff. After a close of evmux's own (`own`: a request the node
   * refused as too large, a message over maxAnswerBytes the node sent unasked) the node is fine,
   * and until the socket is back its calls and streams go elsewhere: it reconnects at once, unless
   * it did so in the last second (a node that sends such a message on every connect gets the usual
   * backoff). A node that refused the handshake with a Retry-After is not asked again before it.
   */
  schedule(why: CloseCause): void {
    const now = performance.now();
    let delay: number;
    if (why === 'own' && now - this.#ownReconnectAt >= 1000) {
      this.#ownReconnectAt = now;
      delay = 0;
    } else {
      delay = backoffDelay(this.#attempt++, this.#reconnect, this.#random);
    }
    delay = Math.max(delay, this.#retryAfterMs ?? 0);
    this.#retryAfterMs = undefined;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#connect();
    }, delay);
  }

  /**
   * Waiting out a backoff: connect now (another socket to the same node has just opened). Once per
   * streak: a node that closes each socket right after opening it must not have its sockets bring
   * each other back without end.
   */
  hurry(): void {
    if (this.#timer === undefined || this.#hurried) return;
    this.#hurried = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#connect();
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    clearTimeout(this.#stableTimer);
    this.#stableTimer = undefined;
  }
}
