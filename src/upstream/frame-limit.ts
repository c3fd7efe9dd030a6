/**
 * The request frames a node takes, as the node showed it. Besu closes its socket with 1009
 * (message too big) on a frame over 1 MiB, its default, while evmux takes requests up to
 * limits.maxRequestBytes (a blob transaction's size). The smallest frame a node closed a socket on
 * is remembered for all its sockets for a while, and frames as large (within a KiB) are refused
 * before they are sent: one client's request sent again and again must not close the node's sockets under
 * everyone else's calls each time. After the while, one such frame may go again (the node may have
 * been given a higher limit).
 */

/** The WebSocket close code of a receiver refusing a message as too large (RFC 6455). */
export const MESSAGE_TOO_BIG = 1009;
/**
 * The smallest request a 1009 is blamed on. No node takes less than this (Besu's default is 1 MiB,
 * geth's 32 MiB); a 1009 with only smaller requests pending is the node's doing (a proxy limiting
 * the messages it passes back, a request that timed out before the close): blamed on a 64-byte
 * call, it kept every request, probes and identity checks included, from the node for 10 minutes.
 */
export const SMALLEST_REFUSABLE_BYTES = 64 * 1024;
/** How long a refused frame size is remembered. */
const REMEMBER_MS = 10 * 60_000;
/**
 * Frames this much smaller than a refused one are refused too: the same request sent again differs
 * by its id's length, and a few bytes under the size refused are as far over the node's limit.
 */
const SLACK_BYTES = 1024;

export class FrameLimit {
  #smallestRefused = Infinity;
  #until = 0;

  /** The node closed a socket on a frame of `bytes`, at `now` (performance.now()). */
  refused(bytes: number, now: number): void {
    if (now >= this.#until) this.#smallestRefused = Infinity;
    this.#smallestRefused = Math.min(this.#smallestRefused, bytes);
    this.#until = now + REMEMBER_MS;
  }

  /** The smallest frame the node closed a socket on lately, if a frame of `bytes` is as large (SLACK_BYTES); else undefined. */
  refuses(bytes: number, now: number): number | undefined {
    return bytes + SLACK_BYTES >= this.#smallestRefused && now < this.#until ? this.#smallestRefused : undefined;
  }
}
