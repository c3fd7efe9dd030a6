// A lean WebSocket client on node:net for load generators. It does the handshake, masks what it
// sends, and parses frame headers only: each message reaches onMessage as a Buffer view of the
// received bytes, with no UTF-8 decoding or JSON parsing. 15,000 of these fit in one process.
// Text and binary messages, fragmentation, ping/pong and close are handled; extensions are not
// negotiated (no permessage-deflate).
import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const OP_CONT = 0x0;
const OP_TEXT = 0x1;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;

export interface LeanWsOptions {
  host: string;
  port: number;
  /** @default '/' */
  path?: string;
  /** Source address, e.g. 127.0.0.2, to spread clients over several ephemeral port ranges. */
  localAddress?: string;
  /** Handshake timeout. @default 10_000 */
  timeoutMs?: number;
  /** Called per message; the Buffer is only valid during the call (it may be a shared buffer). */
  onMessage?: (payload: Buffer, client: LeanWsClient) => void;
  onClose?: (client: LeanWsClient) => void;
}

// One read buffer for every client in the process: each read is parsed before the next one.
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);

// xorshift32: masking keys only have to be unpredictable to intermediaries, not secure.
let maskState = randomBytes(4).readUInt32LE(0) | 1;
function nextMask(): number {
  maskState ^= maskState << 13;
  maskState ^= maskState >>> 17;
  maskState ^= maskState << 5;
  return maskState >>> 0;
}

/** A masked client frame; `payload` strings are written as UTF-8 straight into the frame. */
export function encodeFrame(opcode: number, payload: string | Buffer): Buffer {
  const len = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  const hdr = len < 126 ? 2 : len < 65_536 ? 4 : 10;
  const out = Buffer.allocUnsafe(hdr + 4 + len);
  out[0] = 0x80 | opcode;
  if (len < 126) out[1] = 0x80 | len;
  else if (len < 65_536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
    out.writeUInt32BE(len >>> 0, 6);
  }
  const mask = nextMask();
  out.writeUInt32BE(mask, hdr);
  const start = hdr + 4;
  if (typeof payload === 'string') out.write(payload, start, 'utf8');
  else payload.copy(out, start);
  const m = [mask >>> 24, (mask >>> 16) & 0xff, (mask >>> 8) & 0xff, mask & 0xff];
  for (let i = 0; i < len; i++) out[start + i] = (out[start + i] ?? 0) ^ (m[i & 3] ?? 0);
  return out;
}

export class LeanWsClient {
  readonly socket: Socket;
  /** Close code received from the server (1005 when the close frame had none). */
  closeCode: number | undefined;
  closeReason = '';
  error: Error | undefined;
  closed = false;
  bytesIn = 0;
  messages = 0;
  readonly #opts: LeanWsOptions;
  #parts: Buffer[] = [];
  #partsLen = 0;
  #need = 2;
  #fragments: Buffer[] | undefined;
  #closeSent = false;
  #handshake: ((chunk: Buffer) => void) | undefined;

  private constructor(socket: Socket, opts: LeanWsOptions) {
    this.socket = socket;
    this.#opts = opts;
  }

  /** Connect and complete the handshake; rejects on refusal, a bad upgrade or timeout. */
  static connect(opts: LeanWsOptions): Promise<LeanWsClient> {
    const key = randomBytes(16).toString('base64');
    const accept = createHash('sha1').update(key + GUID).digest('base64');
    // The read callback needs the client, which needs the socket: break the cycle with a ref.
    const ref: { client?: LeanWsClient } = {};
    const socket = connect({
      host: opts.host,
      port: opts.port,
      noDelay: true,
      ...(opts.localAddress !== undefined ? { localAddress: opts.localAddress } : {}),
      // Reads land in one shared buffer and skip the stream machinery: about half the cost of
      // 'data' events per message, which matters with 10,000 sockets in one process.
      onread: {
        buffer: READ_BUFFER,
        callback: (n: number, buf: Uint8Array): boolean => {
          if (ref.client !== undefined) ref.client.#onRead(Buffer.from(buf.buffer, buf.byteOffset, n));
          return true;
        },
      },
    });
    const c = new LeanWsClient(socket, opts);
    ref.client = c;
    return new Promise((resolve, reject) => {
      let head: Buffer = Buffer.alloc(0);
      const fail = (err: Error): void => {
        socket.destroy();
        reject(err);
      };
      socket.setTimeout(opts.timeoutMs ?? 10_000, () => fail(new Error('websocket handshake timeout')));
      socket.once('error', fail);
      socket.once('close', () => fail(new Error('closed during the websocket handshake')));
      socket.once('connect', () => {
        socket.write(
          `GET ${opts.path ?? '/'} HTTP/1.1\r\nHost: ${opts.host}:${opts.port}\r\n` +
            `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\n` +
            'Sec-WebSocket-Version: 13\r\n\r\n',
        );
      });
      c.#handshake = (chunk: Buffer): void => {
        head = Buffer.concat([head, chunk]); // a copy: chunk lives in the shared read buffer
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) {
          if (head.length > 16_384) fail(new Error('websocket handshake response too large'));
          return;
        }
        const text = head.toString('latin1', 0, end);
        if (!text.startsWith('HTTP/1.1 101')) return fail(new Error(`upgrade refused: ${text.split('\r\n')[0]}`));
        if (!text.toLowerCase().includes(`sec-websocket-accept: ${accept.toLowerCase()}`)) {
          return fail(new Error('bad Sec-WebSocket-Accept'));
        }
        c.#handshake = undefined;
        socket.removeAllListeners('error');
        socket.removeAllListeners('close');
        socket.setTimeout(0);
        c.#attach();
        resolve(c);
        if (head.length > end + 4) c.#onData(head.subarray(end + 4), false);
      };
    });
  }

  #onRead(chunk: Buffer): void {
    this.bytesIn += chunk.length;
    if (this.#handshake !== undefined) this.#handshake(chunk);
    else this.#onData(chunk, true);
  }

  #attach(): void {
    this.socket.on('error', (err) => {
      this.error = err;
    });
    this.socket.on('close', () => {
      this.closed = true;
      this.#opts.onClose?.(this);
    });
  }

  /** Send one text message. Returns false when the socket buffer is full (see socket 'drain'). */
  send(payload: string | Buffer): boolean {
    return this.socket.write(encodeFrame(OP_TEXT, payload));
  }

  /** Stop reading: the kernel buffers fill and the server sees backpressure. */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Start the closing handshake; the server answers and closes the TCP connection. */
  close(code = 1000): void {
    if (this.closed || this.#closeSent) return;
    this.#closeSent = true;
    const body = Buffer.alloc(2);
    body.writeUInt16BE(code, 0);
    this.socket.end(encodeFrame(OP_CLOSE, body));
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** `shared`: chunk is a view of READ_BUFFER, so bytes kept past this call must be copied. */
  #onData(chunk: Buffer, shared: boolean): void {
    let buf = chunk;
    if (this.#partsLen > 0) {
      // A frame was split across reads: wait until it is complete, then join once.
      this.#parts.push(shared ? Buffer.from(chunk) : chunk);
      this.#partsLen += chunk.length;
      if (this.#partsLen < this.#need) return;
      buf = Buffer.concat(this.#parts, this.#partsLen);
      this.#parts = [];
      this.#partsLen = 0;
      shared = false;
    }
    let off = 0;
    for (;;) {
      const avail = buf.length - off;
      this.#need = 2;
      if (avail < 2) break;
      const b0 = buf[off] ?? 0;
      const b1 = buf[off + 1] ?? 0;
      let len = b1 & 0x7f;
      let hdr = 2;
      if (len === 126) {
        this.#need = 4;
        if (avail < 4) break;
        len = buf.readUInt16BE(off + 2);
        hdr = 4;
      } else if (len === 127) {
        this.#need = 10;
        if (avail < 10) break;
        len = buf.readUInt32BE(off + 2) * 2 ** 32 + buf.readUInt32BE(off + 6);
        hdr = 10;
      }
      if (b1 & 0x80) hdr += 4; // servers must not mask, but tolerate it
      this.#need = hdr + len;
      if (avail < hdr + len) break;
      let payload = buf.subarray(off + hdr, off + hdr + len);
      if (b1 & 0x80) payload = unmask(payload, buf.readUInt32BE(off + hdr - 4));
      off += hdr + len;
      this.#frame((b0 & 0x80) !== 0, b0 & 0x0f, payload);
    }
    if (off < buf.length) {
      this.#parts = [shared ? Buffer.from(buf.subarray(off)) : buf.subarray(off)];
      this.#partsLen = buf.length - off;
    }
  }

  #frame(fin: boolean, opcode: number, payload: Buffer): void {
    if (opcode >= 0x8) return this.#control(opcode, payload);
    if (opcode !== OP_CONT && fin) return this.#deliver(payload);
    this.#fragments ??= [];
    this.#fragments.push(Buffer.from(payload));
    if (fin) {
      const whole = Buffer.concat(this.#fragments);
      this.#fragments = undefined;
      this.#deliver(whole);
    }
  }

  #deliver(payload: Buffer): void {
    this.messages++;
    this.#opts.onMessage?.(payload, this);
  }

  #control(opcode: number, payload: Buffer): void {
    if (opcode === OP_PING) {
      this.socket.write(encodeFrame(0xa, payload));
    } else if (opcode === OP_CLOSE) {
      this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
      this.closeReason = payload.toString('utf8', 2);
      if (!this.#closeSent) {
        this.#closeSent = true;
        this.socket.end(encodeFrame(OP_CLOSE, payload.subarray(0, 2)));
      }
    }
  }
}

function unmask(payload: Buffer, mask: number): Buffer {
  const out = Buffer.allocUnsafe(payload.length);
  for (let i = 0; i < payload.length; i++) out[i] = (payload[i] ?? 0) ^ ((mask >>> (24 - 8 * (i & 3))) & 0xff);
  return out;
}
