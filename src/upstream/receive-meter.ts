/**
 * Whether a node is still sending a message: the bytes its socket has read, against the bytes of the
 * whole frames taken from it. A node answers a ping (or a probe) after what it is already sending,
 * so behind a slow link a large answer (a wide eth_getLogs, 100 MB at 1 MB/s) holds the pong and
 * the probe's answer up for as long as it takes to arrive. Counted as silence, it cut the socket
 * under the answer every time, retry after retry, and marked a busy node down.
 */
import type { Socket } from 'node:net';

/** Bytes read beyond whole frames that count as a frame still arriving (frame headers of fragments are not counted). */
const UNFRAMED_SLACK_BYTES = 1024;

export interface ReceiveMark {
  readonly read: number;
  readonly framed: number;
}

export class ReceiveMeter {
  #socket: Socket | undefined;
  /** bytes of the whole frames received, with their headers */
  #framed = 0;

  /** The socket under a new WebSocket, once its handshake is answered. */
  attach(socket: Socket): void {
    this.#socket = socket;
    this.#framed = socket.bytesRead;
  }

  /** A whole frame from the node (a message, a ping, a pong) with `payload` bytes. */
  frame(payload: number): void {
    // Frames from a server are unmasked: 2 header bytes, 4 past 125 bytes, 10 past 65,535.
    this.#framed += payload + (payload < 126 ? 2 : payload < 65_536 ? 4 : 10);
  }

  mark(): ReceiveMark {
    return { read: this.#socket?.bytesRead ?? 0, framed: this.#framed };
  }

  /**
   * Since `mark`: bytes kept arriving, and they were not all whole frames (none was whole, or more
   * arrived than the whole frames hold): the node is in the middle of sending something.
   */
  arrivingSince(mark: ReceiveMark): boolean {
    const read = (this.#socket?.bytesRead ?? 0) - mark.read;
    if (read <= 0) return false;
    const framed = this.#framed - mark.framed;
    return framed === 0 || read - framed > UNFRAMED_SLACK_BYTES;
  }
}
