/**
 * A node's socket for the calls of clients whose calls it answered over limits.maxAnswerBytes
 * lately (oversized-clients.ts): such answers hold up the answers behind them on the socket they
 * come on, and here only those of the same clients. Made when first needed, and closed once no call has used it for
 * ISOLATION_MS. Its closes and failed connects say nothing of the node, which its other sockets
 * judge.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from '../log.js';
import type { UpstreamConnection } from './connection.js';
import type { UpstreamFailure } from './errors.js';
import { ISOLATION_MS } from './oversized-clients.js';
import type { ReplySink } from './reply.js';

/** How long a call waits for the socket to open (made just now, or reconnecting). */
const OPEN_WAIT_MS = 1_000;

export class IsolatedSocket {
  readonly #make: () => UpstreamConnection;
  readonly #logger: Logger;
  #connection: UpstreamConnection | undefined;
  #usedAt = -Infinity;
  /** calls waiting for the socket to open: each sends, or fails once it is closed for good */
  readonly #waiting = new Set<() => void>();

  /** `make`: a new socket to the node, not started. */
  constructor(make: () => UpstreamConnection, logger: Logger) {
    this.#make = make;
    this.#logger = logger;
  }

  /** Sends the call on this socket, waiting up to OPEN_WAIT_MS for it to open; `notConnected` fails it after. */
  send(method: string, params: unknown, timeoutMs: number, sink: ReplySink, notConnected: () => UpstreamFailure): void {
    const now = performance.now();
    this.#usedAt = now;
    const connection = this.#connection ?? this.#start();
    if (connection.isOpen) {
      connection.send(method, params, timeoutMs, sink);
      return;
    }
    const go = (): void => {
      clearTimeout(timer);
      this.#waiting.delete(go);
      const left = timeoutMs - (performance.now() - now);
      if (left < 1 || !connection.isOpen) sink.reject(notConnected());
      else connection.send(method, params, left, sink);
    };
    const timer = setTimeout(go, Math.max(1, Math.min(timeoutMs, OPEN_WAIT_MS)));
    this.#waiting.add(go);
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
    this.#logger.info('socket of its own for the calls of clients whose answers passed limits.maxAnswerBytes');
    connection.start();
    return connection;
  }
}
