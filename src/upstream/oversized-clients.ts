/**
 * The clients (CallContext.clientId) whose calls a node answered over limits.maxAnswerBytes lately. Such
 * an answer is skipped unread (frame-reader.ts), but it still has to cross the link first, and
 * the answers to every other call on its socket wait behind it (256 MiB: seconds on a real network).
 * Their calls go to a socket of their own on each node (isolated-socket.ts), where they hold up
 * only each other, until ISOLATION_MS after the last.
 */
import { performance } from 'node:perf_hooks';

export const ISOLATION_MS = 60_000;
/** evmux's own calls (a stream's catch-up, the fetch of a block's logs), held as one client. */
export const OWN_CALLS = 'evmux';
/** Clients remembered at most: the keys come from clients. */
const MAX_CLIENTS = 10_000;

export class OversizedClients {
  /** when each client's last such answer came (performance.now()), oldest first */
  readonly #lastAt = new Map<string, number>();

  note(client: string, now = performance.now()): void {
    this.#lastAt.delete(client);
    this.#lastAt.set(client, now);
    if (this.#lastAt.size > MAX_CLIENTS) this.#lastAt.delete(this.#lastAt.keys().next().value!);
  }

  /** Some client is isolated now (those whose time ran out are forgotten first). */
  active(now?: number): boolean {
    // On every call: with none, no iterator and no clock read.
    if (this.#lastAt.size === 0) return false;
    now ??= performance.now();
    for (const [client, at] of this.#lastAt) {
      if (now - at <= ISOLATION_MS) return true;
      this.#lastAt.delete(client);
    }
    return false;
  }

  has(client: string, now = performance.now()): boolean {
    const at = this.#lastAt.get(client);
    return at !== undefined && now - at <= ISOLATION_MS;
  }
}
