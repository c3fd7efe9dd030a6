/**
 * A node's socket for the calls of clients whose calls it answered over limits.maxAnswerBytes
 * lately (oversized-clients.ts): such answers hold up the answers behind them on the socket they
 * come on, and here only those of the same clients. Made when first needed, and closed once no call
 * has used it for ISOLATION_MS. Its closes and failed connects say nothing of the node, which its
 * other sockets judge.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from '../log.js';
import type { UpstreamConnection } from './connection.js';
import { ISOLATION_MS } from './oversized-clients.js';
import type { ReplySink } from './reply.js';

/** How long a call waits for the socket to open (made just now, or reconnecting). */
const OPEN_WAIT_MS = 1_000;

export class IsolatedSocket {
  readonly #make: () => UpstreamConnection;
  readonly #logger: Logger;
  #connection: UpstreamConnection | undefined;
  #usedAt = -Infinity;
  /** calls waiting for the socket to open: each sends, or goes elsewhere once it is closed */
  readonly #waiting = new Set<() => void>();
  /** the node refused the socket (a failed connect, or it closed): calls go elsewhere until then */
  #refusedUntil = -Infinity;

  /** `make`: a new socket to the node, not started. */
  constructor(make: () => UpstreamConnection, logger: Logger) {
    this.#make = make;
    this.#logger = logger;
  }

  /**
   * Sends the call on this socket, waiting up to OPEN_WAIT_MS for it to open; after that, or while
   * the node will not have it (#refusedUntil), `elsewhere` sends it on with the time it has left.
   */
  send(method: string, params: unknown, timeoutMs: number, sink: ReplySink, elsewhere: (leftMs: number) => void): void {
    const now = performance.now();
    this.#usedAt = now;
    if (now < this.#refusedUntil) {
      elsewhere(timeoutMs);
      return;
    }
    const connection = this.#connection ?? this.#start();
    if (connection.isOpen) {
      connection.send(method, params, timeoutMs, sink);
      return;
    }
    const go = (): void => {
      clearTimeout(timer);
      this.#waiting.delete(go);
      const left = Math.max(1, timeoutMs - (performance.now() - now));
      if (connection.isOpen) connection.send(method, params, left, sink);
      else elsewhere(left);
    };
    const timer = setTimeout(go, Math.max(1, Math.min(timeoutMs, OPEN_WAIT_MS)));
    this.#waiting.add(go);
  }

  /**
   * For /status: `open`, `opening` (made, not open yet), `refused` (the node would not have it: calls
   * go on the shared sockets until a minute has passed), or null when none is made.
   */
  get state(): 'open' | 'opening' | 'refused' | null {
    if (this.#connection !== undefined) return this.#connection.isOpen ? 'open' : 'opening';
    return performance.now() < this.#refusedUntil ? 'refused' : null;
  }

  /** Request bytes sent on it that the node may not have read yet. */
  get bytesInFlight(): number {
    return this.#connection?.bytesInFlight ?? 0;
  }

  /** Closes the socket when no call has used it for ISOLATION_MS and none is in flight. */
  closeIfIdle(now = performance.now()): void {
    if (this.#connection === undefined || now - this.#usedAt <= ISOLATION_MS || this.#connection.inFlight > 0) return;
    this.#logger.info('socket for the calls of clients whose answers passed limits.maxAnswerBytes closed: unused for a minute');
    this.close();
  }

  close(): void {
    const connection = this.#connection;
    this.#connection = undefined;
    connection?.close();
    this.#flush();
  }

  #flush(): void {
    for (const go of [...this.#waiting]) go();
  }

  #start(): UpstreamConnection {
    const connection = this.#make();
    this.#connection = connection;
    connection.on('open', () => this.#flush());
    // A node that takes only so many connections (a provider's cap per key) refuses it: its calls
    // went nowhere for a minute, and it was asked again five times a second.
    connection.on('failed', (reason) => {
      if (this.#connection !== connection || connection.isOpen) return;
      this.#logger.warn({ reason }, 'no socket of its own for the calls of clients whose answers passed limits.maxAnswerBytes: they go on the shared sockets for a minute');
      this.#refusedUntil = performance.now() + ISOLATION_MS;
      this.close();
    });
    this.#logger.info('socket of its own for the calls of clients whose answers passed limits.maxAnswerBytes');
    connection.start();
    return connection;
  }
}
