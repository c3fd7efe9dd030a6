/**
 * What a node's socket reads, before ws's reader: it follows the frames' headers. A whole text
 * message in one frame within the limit (every answer but large ones) it hands to `message` itself:
 * ws's reader, with its stream machinery and a buffer view per header, cost ~3,000 instructions a
 * call. The rest goes to ws untouched (pings, pongs, closes, fragments, long frames), except a
 * message over `limits.maxAnswerBytes`, which is skipped unread: ws refuses one by closing its
 * socket, and every other call on that socket failed with it. Such a message's first bytes
 * go to `started` as soon as they are in (a node that puts the id first has it there, and the call
 * can fail before the rest has crossed a slow link), its last ones to `skipped` at its end (for a
 * node that puts the id last). A message that passed the limit after some of its fragments had gone
 * to ws is ended there with an empty final fragment: ws then emits those fragments as a message,
 * which `truncated` tells its reader to drop.
 */
import { Buffer } from 'node:buffer';
import type WebSocket from 'ws';

/** Bytes kept from each end of a skipped message: `{"jsonrpc":"2.0","id":<integer>` in any order. */
export const EDGE_BYTES = 96;

/** The opcode of a text frame. */
const TEXT = 1;
/** An empty final continuation frame: ends the message whose fragments ws holds. */
const END_OF_MESSAGE = Buffer.from([0x80, 0x00]);

export interface FrameEvents {
  /** a whole text message, read here (the others come from ws): a view into the chunk the socket read */
  message(text: Buffer): void;
  /** a message over the limit is being dropped: its first bytes (EDGE_BYTES, or all of it if shorter) */
  started(head: Buffer): void;
  /** that message has ended: its last bytes (EDGE_BYTES, or all of it if shorter) */
  skipped(tail: Buffer): void;
}

const EMPTY = Buffer.alloc(0);

export class FrameReader {
  readonly #limit: number;
  readonly #pass: (bytes: Buffer) => boolean;
  readonly #events: FrameEvents;
  /** the start of a frame's header that ended a chunk, waiting for the rest */
  readonly #header = Buffer.alloc(14);
  #headerHeld = 0;
  /** payload bytes of the current frame still to come */
  #payloadLeft = 0;
  /** the current frame is dropped */
  #skipFrame = false;
  /** the current frame ends its message */
  #fin = false;
  /** the current frame is part of a message (not ping, pong or close) */
  #data = false;
  /** the current message is dropped, up to its final fragment */
  #skipping = false;
  /** payload bytes of the current message so far */
  #messageBytes = 0;
  /** the current message's first bytes: kept while it may pass the limit (fragmented, or passed it at once) */
  #head: Buffer | undefined;
  #headLength = 0;
  /** `started` has been told of the current message */
  #headTold = false;
  /** the current message's last bytes: of the frames dropped, and of those passed near the limit */
  #tail = EMPTY;
  /** the current frame is passed, and ends within EDGE_BYTES of the limit: its bytes may be the tail */
  #tailFrame = false;
  /** messages whose last frame went to ws, and those of them that are a skipped message's front */
  #passed = 0;
  readonly #truncated: number[] = [];
  /** messages ws has emitted (truncated) */
  #emitted = 0;
  /** a dropped frame continues a message whose fragments ws holds: they are to be ended there */
  #endsHeldMessage = false;
  /** the header just read (#readHeader): its first byte, its payload's length, where it ends */
  #first = 0;
  #payload = 0;
  #headerEnd = 0;

  constructor(limit: number, pass: (bytes: Buffer) => boolean, events: FrameEvents) {
    this.#limit = limit;
    this.#pass = pass;
    this.#events = events;
  }

  /** Bytes from the socket; returns what ws's reader returned for the last of them it was given. */
  write(chunk: Buffer): boolean {
    let result = true;
    /** where the bytes not yet handed to ws start */
    let from = 0;
    let at = 0;
    const length = chunk.length;
    while (at < length) {
      // At a frame's start with no message under way (most of the time: answers, notifications),
      // whole messages are read here, and whatever else is whole goes to ws as it is.
      if (this.#payloadLeft === 0 && this.#headerHeld === 0 && !this.#skipping && this.#head === undefined) {
        while (length - at >= 2) {
          const first = chunk[at]!;
          const second = chunk[at + 1]!;
          // Final and no extension bits (others: a fragment, or for ws to refuse), not masked (a
          // node must not), a 7- or 16-bit length: else the state machine follows it.
          if ((first & 0xf0) !== 0x80 || second > 126) break;
          let payload = second;
          let header = 2;
          if (second === 126) {
            if (length - at < 4) break;
            payload = (chunk[at + 2]! << 8) | chunk[at + 3]!;
            header = 4;
          }
          const end = at + header + payload;
          if (payload > this.#limit || end > length) break;
          const opcode = first & 0x0f;
          if (opcode === TEXT) {
            // What went before it (the end of a frame ws holds the start of, pings) goes first.
            if (at > from) result = this.#pass(chunk.subarray(from, at));
            from = end;
            this.#events.message(chunk.subarray(at + header, end));
          } else if (opcode < 8) this.#passed++;
          at = end;
        }
        if (at === length) break;
      }
      if (this.#payloadLeft > 0) {
        const take = Math.min(this.#payloadLeft, length - at);
        if (this.#data && this.#head !== undefined && this.#headLength < EDGE_BYTES) {
          this.#keepHead(chunk, at, take);
          if (this.#skipping && this.#headLength === EDGE_BYTES) this.#tellHead();
        }
        if (this.#skipFrame || this.#tailFrame) this.#keepTail(chunk, at, take);
        at += take;
        this.#payloadLeft -= take;
        if (this.#skipFrame) from = at;
        if (this.#payloadLeft === 0) this.#frameEnded();
        continue;
      }
      const start = at;
      const held = this.#headerHeld > 0;
      if (!this.#readHeader(chunk, at)) {
        // The header goes on in the next chunk: hold it until it shows what its frame is.
        if (start > from) result = this.#pass(chunk.subarray(from, start));
        return result;
      }
      at = this.#headerEnd;
      if (this.#frameStarts(this.#first, this.#payload)) {
        // Dropped: what came before it goes on; it does not.
        if (start > from) result = this.#pass(chunk.subarray(from, start));
        if (this.#endsHeldMessage) {
          this.#endsHeldMessage = false;
          result = this.#pass(END_OF_MESSAGE);
          // Its first bytes went to ws in its first fragments, and were kept: the call can fail now.
          if (this.#headLength === EDGE_BYTES) this.#tellHead();
        }
        from = at;
      } else if (held) {
        // Its header began in the last chunk (this one starts with its rest): the whole header goes first.
        result = this.#pass(Buffer.from(this.#header.subarray(0, headerLength(this.#header[1]!))));
        from = at;
      }
      if (this.#payloadLeft === 0) this.#frameEnded();
    }
    if (chunk.length > from) result = this.#pass(from === 0 ? chunk : chunk.subarray(from));
    return result;
  }

  /** A message, or a ping or pong, is partly read: past its first byte, short of its last. */
  get midMessage(): boolean {
    return this.#payloadLeft > 0 || this.#headerHeld > 0 || this.#skipping || this.#head !== undefined;
  }

  /** One of ws's messages: whether it is the front of a skipped message (to be dropped). */
  truncated(): boolean {
    this.#emitted++;
    if (this.#truncated.length === 0 || this.#truncated[0] !== this.#emitted) return false;
    this.#truncated.shift();
    return true;
  }

  /**
   * A frame's header has been read (`first`: its first byte). Returns whether the frame is dropped.
   */
  #frameStarts(first: number, payload: number): boolean {
    const opcode = first & 0x0f;
    this.#fin = (first & 0x80) !== 0;
    this.#payloadLeft = payload;
    this.#data = opcode < 8;
    this.#tailFrame = false;
    // Pings, pongs and closes go to ws, also between the fragments of a message being dropped.
    if (!this.#data) {
      this.#skipFrame = false;
      return false;
    }
    if (opcode === 0 && this.#skipping) {
      this.#messageBytes += payload;
      this.#skipFrame = true;
      return true;
    }
    if (opcode !== 0) {
      // A message before the end of the one being dropped: the node broke the protocol, that one is over.
      if (this.#skipping) this.#endSkip();
      this.#messageBytes = 0;
      this.#head = undefined;
      this.#headLength = 0;
      this.#tail = EMPTY;
    }
    this.#messageBytes += payload;
    if (this.#messageBytes <= this.#limit) {
      // The first of several fragments: its front is kept, in case the message passes the limit.
      if (opcode !== 0 && !this.#fin) this.#startHead();
      // Its end is near the limit: a fragment that passes it may be too short to hold the tail.
      this.#tailFrame = this.#head !== undefined && this.#messageBytes > this.#limit - EDGE_BYTES;
      this.#skipFrame = false;
      return false;
    }
    this.#skipping = true;
    this.#skipFrame = true;
    if (opcode !== 0) this.#startHead();
    else {
      // Its earlier fragments went to ws: it emits them as a message, which its reader drops.
      this.#endsHeldMessage = true;
      this.#truncated.push(++this.#passed);
    }
    return true;
  }

  #frameEnded(): void {
    if (!this.#data || !this.#fin) return;
    if (!this.#skipFrame) {
      this.#passed++;
      this.#head = undefined;
      return;
    }
    this.#endSkip();
  }

  #endSkip(): void {
    // Shorter than EDGE_BYTES: its head is all of it.
    this.#tellHead();
    this.#skipping = false;
    const tail = this.#tail;
    this.#head = undefined;
    this.#tail = EMPTY;
    this.#messageBytes = 0;
    this.#events.skipped(tail);
  }

  #startHead(): void {
    this.#head = Buffer.alloc(EDGE_BYTES);
    this.#headLength = 0;
    this.#headTold = false;
  }

  #tellHead(): void {
    if (this.#headTold) return;
    this.#headTold = true;
    this.#events.started(this.#head === undefined ? EMPTY : this.#head.subarray(0, this.#headLength));
  }

  #keepHead(chunk: Buffer, at: number, length: number): void {
    this.#headLength += chunk.copy(this.#head!, this.#headLength, at, at + Math.min(length, EDGE_BYTES - this.#headLength));
  }

  #keepTail(chunk: Buffer, at: number, length: number): void {
    const end = at + length;
    if (length >= EDGE_BYTES) {
      this.#tail = Buffer.from(chunk.subarray(end - EDGE_BYTES, end));
      return;
    }
    const joined = Buffer.concat([this.#tail, chunk.subarray(at, end)]);
    this.#tail = joined.length > EDGE_BYTES ? joined.subarray(joined.length - EDGE_BYTES) : joined;
  }

  /**
   * Read the frame header at `at` into #first, #payload and #headerEnd (after the bytes of it held
   * from the chunks before). False when the chunk ends first: its bytes are held.
   */
  #readHeader(chunk: Buffer, at: number): boolean {
    if (this.#headerHeld === 0) {
      const available = chunk.length - at;
      if (available >= 2) {
        const length = headerLength(chunk[at + 1]!);
        if (available >= length) {
          this.#first = chunk[at]!;
          this.#payload = payloadLength(chunk, at);
          this.#headerEnd = at + length;
          return true;
        }
      }
      this.#headerHeld = chunk.copy(this.#header, 0, at);
      return false;
    }
    // Two bytes tell how long it is.
    let end = at;
    if (this.#headerHeld < 2) {
      const more = chunk.copy(this.#header, this.#headerHeld, end, end + 2 - this.#headerHeld);
      this.#headerHeld += more;
      end += more;
      if (this.#headerHeld < 2) return false;
    }
    const length = headerLength(this.#header[1]!);
    const more = chunk.copy(this.#header, this.#headerHeld, end, end + length - this.#headerHeld);
    this.#headerHeld += more;
    end += more;
    if (this.#headerHeld < length) return false;
    this.#headerHeld = 0;
    this.#first = this.#header[0]!;
    this.#payload = payloadLength(this.#header, 0);
    this.#headerEnd = end;
    return true;
  }
}

/**
 * Put a frame reader between an open ws socket and its reader (ws 8 hands each chunk the socket reads to
 * `_receiver.write`; test/unit/oversized-answer.test.ts holds it to that). Call it on 'open',
 * before the socket has read a byte past the handshake.
 */
export function readFrames(socket: WebSocket, limit: number, events: FrameEvents): FrameReader {
  const receiver = (socket as unknown as { _receiver: { write(chunk: Buffer): boolean } })._receiver;
  const write = receiver.write.bind(receiver);
  const reader = new FrameReader(limit, write, events);
  receiver.write = (chunk) => reader.write(chunk);
  return reader;
}

/** A frame header's length from its second byte: 2, plus 2 or 8 for a longer length, plus 4 for a mask. */
function headerLength(second: number): number {
  const short = second & 0x7f;
  return 2 + (short === 126 ? 2 : short === 127 ? 8 : 0) + ((second & 0x80) !== 0 ? 4 : 0);
}

/** The payload length of the frame whose header starts at `at` (whole in `bytes`). */
function payloadLength(bytes: Buffer, at: number): number {
  const short = bytes[at + 1]! & 0x7f;
  if (short < 126) return short;
  if (short === 126) return bytes.readUInt16BE(at + 2);
  return bytes.readUInt32BE(at + 2) * 0x1_0000_0000 + bytes.readUInt32BE(at + 6);
}
