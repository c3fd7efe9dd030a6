// A lean HTTP/1.1 keep-alive client on node:net for the call load generator: one connection,
// POST requests written as prebuilt bytes, responses matched in order (HTTP/1.1 answers in
// request order). Only the status line and Content-Length / Transfer-Encoding are read.
import { connect, type Socket } from 'node:net';

export interface LeanHttpOptions {
  host: string;
  port: number;
  /** @default '/' */
  path?: string;
  localAddress?: string;
  /** Called per response in request order; the body is only valid during the call. */
  onResponse: (status: number, body: Buffer, client: LeanHttpClient) => void;
  onClose?: (client: LeanHttpClient) => void;
}

const CRLF2 = Buffer.from('\r\n\r\n');

export class LeanHttpClient {
  readonly socket: Socket;
  inFlight = 0;
  closed = false;
  error: Error | undefined;
  readonly #opts: LeanHttpOptions;
  readonly #prefix: string;
  #pending: Buffer | undefined;

  private constructor(socket: Socket, opts: LeanHttpOptions) {
    this.socket = socket;
    this.#opts = opts;
    this.#prefix =
      `POST ${opts.path ?? '/'} HTTP/1.1\r\nHost: ${opts.host}:${opts.port}\r\n` +
      'Content-Type: application/json\r\nContent-Length: ';
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err) => {
      this.error = err;
    });
    socket.on('close', () => {
      this.closed = true;
      opts.onClose?.(this);
    });
  }

  static connect(opts: LeanHttpOptions): Promise<LeanHttpClient> {
    const socket = connect({
      host: opts.host,
      port: opts.port,
      noDelay: true,
      ...(opts.localAddress !== undefined ? { localAddress: opts.localAddress } : {}),
    });
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new LeanHttpClient(socket, opts));
      });
    });
  }

  /** Write one POST with a JSON body; its response arrives through onResponse. */
  post(body: string): boolean {
    this.inFlight++;
    return this.socket.write(`${this.#prefix}${Buffer.byteLength(body)}\r\n\r\n${body}`);
  }

  destroy(): void {
    this.socket.destroy();
  }

  #onData(chunk: Buffer): void {
    let buf = this.#pending === undefined ? chunk : Buffer.concat([this.#pending, chunk]);
    this.#pending = undefined;
    let off = 0;
    while (off < buf.length) {
      const used = this.#parseOne(buf, off);
      if (used === 0) break;
      off += used;
    }
    if (off < buf.length) {
      buf = buf.subarray(off);
      this.#pending = buf;
    }
  }

  /** Parse one complete response at `off`; returns the bytes consumed, 0 if incomplete. */
  #parseOne(buf: Buffer, off: number): number {
    const headEnd = buf.indexOf(CRLF2, off);
    if (headEnd < 0) return 0;
    const head = buf.toString('latin1', off, headEnd).toLowerCase();
    const status = Number(head.slice(9, 12));
    const bodyStart = headEnd + 4;
    const cl = /\r\ncontent-length:\s*(\d+)/.exec(head);
    if (cl?.[1] !== undefined) {
      const end = bodyStart + Number(cl[1]);
      if (end > buf.length) return 0;
      this.#done(status, buf.subarray(bodyStart, end));
      return end - off;
    }
    if (/\r\ntransfer-encoding:\s*chunked/.test(head)) {
      const parts: Buffer[] = [];
      let p = bodyStart;
      for (;;) {
        const lineEnd = buf.indexOf('\r\n', p);
        if (lineEnd < 0) return 0;
        const size = Number.parseInt(buf.toString('latin1', p, lineEnd), 16);
        if (Number.isNaN(size)) throw new Error('bad chunk size in HTTP response');
        const dataEnd = lineEnd + 2 + size;
        if (dataEnd + 2 > buf.length) return 0;
        if (size === 0) {
          // No trailers are expected; the last chunk ends with one more CRLF.
          this.#done(status, Buffer.concat(parts));
          return dataEnd + 2 - off;
        }
        parts.push(buf.subarray(lineEnd + 2, dataEnd));
        p = dataEnd + 2;
      }
    }
    // No length: 204/304 or a response delimited by close; treat as empty.
    this.#done(status, buf.subarray(bodyStart, bodyStart));
    return bodyStart - off;
  }

  #done(status: number, body: Buffer): void {
    this.inFlight--;
    this.#opts.onResponse(status, body, this);
  }
}
