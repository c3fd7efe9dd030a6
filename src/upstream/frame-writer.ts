/**
 * A request frame written to a node's socket through ws's own framing and write, without ws's
 * send(): send() builds an options object for every message, starting with a computed key
 * (`{ [kByteLength]: …, fin, … }`), and V8 defined its seven other properties through the runtime,
 * one call each: ~9,000 instructions a call, a fifth of evmux's call path (callgrind; in a process
 * that had not loaded viem's index first, whatever that changed; BENCHMARKS.md, thirty-ninth
 * session). This makes the frame send() makes for a Buffer with evmux's socket options (text,
 * final, masked, not compressed: perMessageDeflate is off), from one options object.
 *
 * Text, as JSON-RPC over WebSocket is spoken: the frames are JSON, valid UTF-8. Sent as binary,
 * Ganache (wsBinary "auto") answered in binary too, and a provider's gateway may refuse binary.
 */
import * as ws from 'ws';
import WebSocket from 'ws';

/** What Sender.frame reads; `readOnly`: the frame is masked into a copy, never in place. */
const FRAME_OPTIONS = { fin: true, generateMask: undefined, mask: true, maskBuffer: undefined, opcode: 1, readOnly: true, rsv1: false };

/** The parts of ws's Sender this uses (ws 8: Sender.frame is public; sendFrame and _state are its own). */
interface SenderClass {
  frame(data: Buffer, options: typeof FRAME_OPTIONS): Buffer[];
}
interface SenderInstance {
  /** 0 (DEFAULT): nothing queued behind a compression or a blob read */
  _state: number;
  sendFrame(list: Buffer[], cb: undefined): void;
}

const Sender = (ws as unknown as { Sender?: SenderClass }).Sender;

/** Writes `frame` as one text message on an open socket, as socket.send(frame, { binary: false }) would. */
export function writeFrame(socket: WebSocket, frame: Buffer): void {
  const sender = (socket as unknown as { _sender?: SenderInstance })._sender;
  if (Sender === undefined || sender === undefined || sender._state !== 0 || typeof sender.sendFrame !== 'function') {
    socket.send(frame, { binary: false });
    return;
  }
  sender.sendFrame(Sender.frame(frame, FRAME_OPTIONS), undefined);
}
