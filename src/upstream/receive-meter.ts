/**
 * Whether a node is still sending a message: bytes kept arriving since a mark, and a message was
 * partly read at the mark or is now (the frames are followed by frame-reader.ts). A node
 * answers a ping (or a probe) after what it is already sending, so behind a slow link a large
 * answer (a wide eth_getLogs, 100 MB at 1 MB/s) holds the pong and the probe's answer up for as
 * long as it takes to arrive. Counted as silence, it cut the socket under the answer every time,
 * retry after retry, and marked a busy node down. (Counting the bytes of whole messages against
 * the bytes read took a node for idle while a second large answer arrived: the first one, done
 * after the mark, counted in full, the bytes of it read before the mark too.)
 */
import type { Socket } from 'node:net';

/**
 * Bytes that must arrive in a window (a pong's or a probe's wait) for a message under way to count
 * as the node's progress. A node stuck in an endless message, a byte a second, was never cut: its
 * pong and its answers waited behind it for good, and every call to it failed.
 */
export const MIN_PROGRESS_BYTES = 1024;

export interface ReceiveMark {
  readonly read: number;
  /** a message was partly read at the mark */
  readonly midMessage: boolean;
}

const NEVER = (): boolean => false;

export class ReceiveMeter {
  #socket: Socket | undefined;
  #midMessage: () => boolean = NEVER;

  /** The socket under a new WebSocket, once its handshake is answered. */
  attach(socket: Socket): void {
    this.#socket = socket;
    this.#midMessage = NEVER;
  }

  /** What tells whether a message is partly read, once the socket is open (FrameReader.midMessage). */
  follow(midMessage: () => boolean): void {
    this.#midMessage = midMessage;
  }

  mark(): ReceiveMark {
    return { read: this.#socket?.bytesRead ?? 0, midMessage: this.#midMessage() };
  }

  /**
   * Since `mark`: at least MIN_PROGRESS_BYTES arrived, and a message was partly read then or is
   * now: the node is in the middle of sending something. (Whole messages alone, with no pong among
   * them, are not.)
   */
  arrivingSince(mark: ReceiveMark): boolean {
    const read = (this.#socket?.bytesRead ?? 0) - mark.read;
    return read >= MIN_PROGRESS_BYTES && (mark.midMessage || this.#midMessage());
  }
}
