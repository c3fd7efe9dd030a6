/** The uWebSockets.js front end: the only module that imports uWS. */
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import uWS from '@trufflesuite/uws-js-unofficial';
import { COALESCE_WINDOW_MS } from '../runtime/coalesce-window.js';
import { BodyDeadlines } from './body-deadlines.js';
import { CORS_HEADERS, type ClientSocket, type FrontEnd, type FrontEndHandlers, type FrontEndOptions, type HttpResponse, type PostExchange } from './front-end.js';
import { HEADER_NAME_LIST } from './header-name.js';
import { KeepAlive, type Pingable } from './keepalive.js';
import { ListenError, listenAddress } from './listen-error.js';
import { plainAddress } from './peer-address.js';

/**
 * Status lines and header strings as bytes, encoded once. uWS takes a JS string argument by copying
 * it into a temporary UTF-8 buffer (allocated and freed per call); bytes it takes as they are.
 */
const STATUS_LINES = new Map<number, Buffer>(
  [
    '200 OK',
    '204 No Content',
    '400 Bad Request',
    '404 Not Found',
    '405 Method Not Allowed',
    '408 Request Timeout',
    '413 Payload Too Large',
    '415 Unsupported Media Type',
    '429 Too Many Requests',
    '500 Internal Server Error',
    '503 Service Unavailable',
  ].map((line) => [Number.parseInt(line, 10), Buffer.from(line)]),
);
const CONTENT_TYPE = Buffer.from('content-type');
const CONTENT_LENGTH = Buffer.from('content-length');
/** Header names and values evmux writes (a handful of constants); bounded all the same. */
const ENCODED = new Map<string, Buffer>();
const MAX_ENCODED = 64;

function encoded(text: string): Buffer | string {
  const known = ENCODED.get(text);
  if (known !== undefined) return known;
  if (ENCODED.size >= MAX_ENCODED) return text;
  const bytes = Buffer.from(text);
  ENCODED.set(text, bytes);
  return bytes;
}

/*
 * The content type and extra headers of the last response, encoded. JSON-RPC answers repeat the
 * same constants, so the usual response compares two references instead of walking the header
 * object and looking up each string (about 500 instructions per answer). Header objects are
 * read-only by contract (HttpResponse.headers), so one seen before still holds the same lines.
 */
let lastContentType = '';
let lastContentTypeBytes: Buffer | string = '';
let lastHeaders: Readonly<Record<string, string>> | undefined;
let lastHeaderLines: Array<Buffer | string> = [];

function contentTypeBytes(contentType: string): Buffer | string {
  if (contentType !== lastContentType) {
    lastContentType = contentType;
    lastContentTypeBytes = encoded(contentType);
  }
  return lastContentTypeBytes;
}

/** Names and values, alternating. */
function headerLines(headers: Readonly<Record<string, string>>): ReadonlyArray<Buffer | string> {
  if (headers !== lastHeaders) {
    const lines: Array<Buffer | string> = [];
    for (const key in headers) lines.push(encoded(key), encoded(headers[key]!));
    lastHeaders = headers;
    lastHeaderLines = lines;
  }
  return lastHeaderLines;
}

/**
 * What uWS keeps for each socket: the upgrade's data until open, then the wrapper. Both fields exist
 * from the start and are never deleted, so reading `wrapper` on every message stays a fast load
 * (deleting a field turned the object into a dictionary, looked up by name per frame).
 */
interface SocketState<T> {
  pending: T | undefined;
  wrapper: UwsClientSocket<T> | undefined;
}

/**
 * Frames sent outside a uWS callback (answers that arrive from a node) would each cost a syscall
 * when many arrive together. A frame sent on its own goes out at once; one sent within
 * COALESCE_WINDOW_MS of the last, or while others wait, waits in a per-socket outbox until the check
 * phase right after this poll, and they go out corked together (waiting costs a setImmediate and its
 * callback, which a lone answer is spared). Anything that changes what the socket receives through
 * topics flushes first, so a subscription's answer and greeting always precede its published
 * notifications.
 */
/** when the last frame was sent or queued, on the performance.now() clock */
let lastSendAt = -Infinity;
// A plain array reused forever, not a Set: clearing a long-lived Set allocates its new table in
// the old generation, and at one flush per call that garbage is what forces mark-compact pauses.
const flushQueue: Array<UwsClientSocket<unknown> | undefined> = [];
let queued = 0;

function scheduleFlush(socket: UwsClientSocket<unknown>): void {
  flushQueue[queued++] = socket;
  if (queued === 1) setImmediate(flushAll);
}

function flushAll(): void {
  // A socket may be listed twice (flushed early by a subscribe, then written again): flush is idempotent.
  for (let i = 0; i < queued; i++) {
    flushQueue[i]?.flush();
    flushQueue[i] = undefined;
  }
  queued = 0;
}

class UwsClientSocket<T> implements ClientSocket<T>, Pingable {
  readonly data: T;
  keepAliveSlot = -1;
  #ws: uWS.WebSocket<SocketState<T>> | undefined;
  /** frames waiting for this poll's flush; allocated on first use (most of 10k sockets idle) */
  #outbox: Array<string | Buffer> | undefined;
  #outboxBytes = 0;

  constructor(ws: uWS.WebSocket<SocketState<T>>, data: T) {
    this.#ws = ws;
    this.data = data;
  }

  get closed(): boolean {
    return this.#ws === undefined;
  }

  send(text: string | Buffer): boolean {
    const ws = this.#ws;
    if (ws === undefined) return false;
    const now = performance.now();
    const alone = now - lastSendAt >= COALESCE_WINDOW_MS;
    lastSendAt = now;
    if (alone && this.#outbox === undefined) {
      ws.cork(() => ws.send(text, false, false));
      return true;
    }
    if (this.#outbox === undefined) {
      this.#outbox = [text];
      scheduleFlush(this as UwsClientSocket<unknown>);
    } else this.#outbox.push(text);
    this.#outboxBytes += text.length;
    return true;
  }

  flush(): void {
    const ws = this.#ws;
    const frames = this.#outbox;
    if (frames === undefined) return;
    this.#outbox = undefined;
    this.#outboxBytes = 0;
    if (ws === undefined) return;
    ws.cork(() => {
      for (const frame of frames) ws.send(frame, false, false);
    });
  }

  bufferedAmount(): number {
    return (this.#ws?.getBufferedAmount() ?? 0) + this.#outboxBytes;
  }

  subscribe(topic: string): void {
    this.flush();
    this.#ws?.subscribe(topic);
  }

  unsubscribe(topic: string): void {
    this.flush();
    this.#ws?.unsubscribe(topic);
  }

  close(code: number, reason: string): void {
    const ws = this.#ws;
    if (ws === undefined) return;
    this.flush();
    this.#ws = undefined;
    ws.end(code, reason.slice(0, 123));
  }

  ping(): void {
    this.#ws?.ping();
  }

  /** uWS invalidates the handle on close; calls after that must be no-ops. */
  detach(): void {
    this.#ws = undefined;
    this.#outbox = undefined;
    this.#outboxBytes = 0;
  }
}

/**
 * Decodes straight from uWS's ArrayBuffer: `Buffer.from(buffer).toString()` first makes a Buffer
 * view of it (a typed array's allocation), which took it twice as long. The BOM is kept, as Buffer
 * keeps it, so a frame that starts with one is still not JSON.
 */
const UTF8 = new TextDecoder('utf-8', { ignoreBOM: true });
/** What uWS tells the close handler when it cut a frame over maxPayloadLength. */
const UWS_TOO_BIG = 'Received too big message';

function text(buffer: ArrayBuffer): string {
  return UTF8.decode(buffer);
}

const POST_FAILED: HttpResponse = { status: 500, contentType: 'application/json', body: '{"error":"internal error"}', headers: CORS_HEADERS };
const GET_FAILED: HttpResponse = { status: 500, contentType: 'text/plain', body: 'internal error\n', headers: CORS_HEADERS };
const ALLOWED_METHODS = { ...CORS_HEADERS, allow: 'GET, HEAD, POST, OPTIONS' } as const;
const NO_HEADERS: Record<string, string> = Object.freeze({}) as Record<string, string>;

/**
 * The headers of `names` a request has, each with every line of it joined as RFC 9110 joins a
 * field's lines (", "). A proxy that appends its own line (HAProxy's `option forwardfor`) puts it
 * after one the client may have sent; read with getHeader, which gives the first line only, the
 * client's own X-Forwarded-For was believed, and it named any address it liked: past every per-IP
 * limit, or a victim's address used up.
 */
function headersNamed(req: uWS.HttpRequest, names: readonly string[]): Record<string, string> {
  let headers = NO_HEADERS;
  req.forEach((name, value) => {
    if (value === '' || !names.includes(name)) return;
    if (headers === NO_HEADERS) headers = {};
    const before = headers[name];
    headers[name] = before === undefined ? value : `${before}, ${value}`;
  });
  return headers;
}

/**
 * One HTTP request as the gateway sees it, and whether its response may still be written (uWS throws
 * on a response that was aborted or already answered). A class rather than closures over locals:
 * what a request allocates outlives it in the young generation far more often when it hangs off
 * per-request closures (measured: 1.2 MB promoted per scavenge at 5k req/s before, 0.4 MB after).
 * The peer address costs a getpeername() syscall and an HTTP call needs it only for an ip-based
 * session key, so it is read on first use; once `res` is gone it reads ''.
 */
class HttpExchange implements PostExchange {
  readonly path: string;
  readonly query: string;
  readonly headers: Record<string, string>;
  aborted = false;
  answered = false;
  readonly #res: uWS.HttpResponse;
  readonly #state: FrontEndState;
  #ip: string | undefined;

  constructor(res: uWS.HttpResponse, req: uWS.HttpRequest, names: readonly string[], state: FrontEndState) {
    this.#res = res;
    this.#state = state;
    this.path = req.getUrl();
    this.query = req.getQuery() ?? '';
    this.headers = names.length === 0 ? NO_HEADERS : headersNamed(req, names);
  }

  get ip(): string {
    return (this.#ip ??= this.aborted || this.answered ? '' : plainAddress(text(this.#res.getRemoteAddressAsText())));
  }

  /** uWS reads a PROXY protocol v2 header itself when a connection starts with one. */
  get proxiedIp(): string {
    return (this.#proxiedIp ??= this.aborted || this.answered ? '' : plainAddress(text(this.#res.getProxiedRemoteAddressAsText())));
  }

  #proxiedIp: string | undefined;

  /** Write the response unless the client went away; at most once. `closeConnection`: when the rest of the request will not be read. */
  respond(response: HttpResponse, closeConnection = false, headOnly = false): void {
    if (this.aborted || this.answered) return;
    // Read while they can be: should uWS cut a large answer, its client is named (answerCut).
    if (response.body.length > STREAMED_BODY_BYTES) this.#keepAddresses();
    this.answered = true;
    this.bodyIn();
    // Once the front end stopped listening an answer closes its connection, unless it is large and
    // written as the client takes it (closing would write it all at once; the shutdown waits for it).
    const close = closeConnection || (this.#state.stopped && response.body.length <= STREAMED_BODY_BYTES);
    writeResponse(this.#res, response, close, headOnly, this);
  }

  /** A large answer is being written as the client takes it: until it is out, or the client is gone (abort). */
  get streaming(): boolean {
    return this.#streaming;
  }

  set streaming(on: boolean) {
    if (on === this.#streaming) return;
    this.#streaming = on;
    this.#state.answers += on ? 1 : -1;
  }

  #streaming = false;

  #keepAddresses(): void {
    void this.ip;
    void this.proxiedIp;
  }

  /** Part of a streamed answer was handed to uWS: it starts its idle timer again then. */
  wrote(): void {
    this.#wroteAt = performance.now();
  }

  /** when part of the streamed answer was last handed to uWS, on the performance.now() clock */
  #wroteAt = 0;

  /**
   * The client went away, or uWS cut its connection. True when that cut short an answer the client
   * had read nothing of for as long as uWS waits: a client that hangs up on its own mid-answer (its
   * own timeout, a cancelled page), and the shutdown's close, are not that.
   */
  abort(): boolean {
    this.aborted = true;
    this.bodyIn();
    const unread = this.#streaming && !this.#state.closing && performance.now() - this.#wroteAt >= UNREAD_CUT_MS;
    this.streaming = false;
    return unread;
  }

  /** A POST's body is arriving: counted for a shutdown to wait for, until it is in or the request is answered or aborted. */
  awaitBody(): void {
    this.#reading = true;
    this.#state.bodies++;
  }

  bodyIn(): void {
    if (!this.#reading) return;
    this.#reading = false;
    this.#state.bodies--;
  }

  #reading = false;
}

/**
 * What one front end's shutdown needs to know: how many HTTP requests have a body still arriving,
 * and how many answers are still being written (HttpExchange.streaming); whether it stopped
 * listening, and whether it is closing every socket (the last step of a shutdown: no answer cut
 * then is the client's doing).
 */
interface FrontEndState {
  bodies: number;
  answers: number;
  stopped: boolean;
  closing: boolean;
}

/**
 * `headOnly`: the answer to a HEAD, its headers and the length its body would have. With
 * `exchange`, a body over STREAMED_BODY_BYTES is written as the client takes it (streamBody), and
 * `exchange.streaming` says whether some of it is still to go.
 */
function writeResponse(res: uWS.HttpResponse, response: HttpResponse, closeConnection = false, headOnly = false, exchange?: HttpExchange): void {
  res.cork(() => {
    writeHead(res, response);
    if (headOnly) endHead(res, Buffer.byteLength(response.body), closeConnection);
    else if (exchange === undefined || closeConnection || response.body.length <= STREAMED_BODY_BYTES) res.end(response.body, closeConnection);
    else exchange.streaming = streamBody(res, response.body, exchange);
  });
}

/**
 * The end of a HEAD answer: its headers, with the length a GET's body would have. uWS 20.30's
 * `endWithoutBody(length)` takes the response for unfinished when `length` is over 0 (it waits for
 * that many bytes that never come): the next request on the connection was taken for pipelining
 * and the connection cut, and one left alone was never closed, not even when idle or asked to with
 * `Connection: close`. So the length goes in as a header, and the response ends with no length of
 * uWS's. Closing with the answer has uWS write a length of its own, which must then be the 0 it
 * ends with (only a draining shutdown closes a HEAD's connection: its status is what is read).
 */
function endHead(res: uWS.HttpResponse, length: number, closeConnection: boolean): void {
  if (closeConnection) {
    res.endWithoutBody(0, true);
    return;
  }
  res.writeHeader(CONTENT_LENGTH, String(length));
  res.endWithoutBody();
}

/**
 * Answers past this size are handed to uWS as the client takes them (tryEnd and onWritable), not
 * all at once: uWS closes a connection whose answer the client has not read on within 10 s, and
 * after `end()` it does so without a word; a response still being written is aborted instead, so
 * such a cut is seen, counted and logged.
 */
const STREAMED_BODY_BYTES = 64 * 1024;
/**
 * uWS's idle timeout of 10 s runs in ticks of 4 s: it cuts a connection 8 to 12 s after the last
 * part of an answer went out. A connection lost sooner after one was closed by the client.
 */
const UNREAD_CUT_MS = 7_500;

/** The most uWS takes for idleTimeout. */
const UWS_MAX_IDLE_S = 960;

/**
 * uWS sweeps its idle timers every 4 s and closes a socket at the sweep that finds its time up, so
 * a socket is closed 4 s before its idleTimeout at worst: given the setting itself, a client was cut
 * after 4.1 s of silence at 8, and one answering every ping (sent every T/2 = 4 s) was cut whenever
 * a pong came a moment late, in groups. Given 4 s more, a silent client is closed between the
 * setting and 4 s after it (at 957 to 960, at most 960).
 */
function uwsIdleTimeout(seconds: number): number {
  return seconds === 0 ? 0 : Math.min(seconds + 4, UWS_MAX_IDLE_S);
}

function writeHead(res: uWS.HttpResponse, response: HttpResponse): void {
  // uWS writes "200 OK" itself with the first header: one call into the addon fewer per answer.
  if (response.status !== 200) res.writeStatus(STATUS_LINES.get(response.status) ?? `${response.status} Unknown`);
  res.writeHeader(CONTENT_TYPE, contentTypeBytes(response.contentType));
  if (response.headers !== undefined) {
    const lines = headerLines(response.headers);
    for (let i = 0; i < lines.length; i += 2) res.writeHeader(lines[i]!, lines[i + 1]!);
  }
}

/** Write `body` as far as the client takes it, and the rest as it does; true while some is left (`exchange.streaming` is cleared when it is out). */
function streamBody(res: uWS.HttpResponse, text: string | Buffer, exchange: HttpExchange): boolean {
  const body = typeof text === 'string' ? Buffer.from(text) : text;
  const start = res.getWriteOffset();
  if (res.tryEnd(body, body.length)[1]) return false;
  exchange.wrote();
  res.onWritable((offset) => {
    exchange.wrote();
    const [ok, finished] = res.tryEnd(body.subarray(offset - start), body.length);
    if (finished) exchange.streaming = false;
    return ok;
  });
  return true;
}

/** uWS.js takes options after a host and port too (its typings name them only after a port). */
type ListenWithOptions = (host: string, port: number, options: number, cb: (token: uWS.us_listen_socket | false) => void) => unknown;
/** LIBUS_LISTEN_EXCLUSIVE_PORT, a value of the module that its typings declare only as an enum member */
const EXCLUSIVE_PORT = (uWS as unknown as { LIBUS_LISTEN_EXCLUSIVE_PORT: number }).LIBUS_LISTEN_EXCLUSIVE_PORT;

export function createUwsFrontEnd<T>(handlers: FrontEndHandlers<T>, options: FrontEndOptions): FrontEnd {
  // The package's native builds are for Node 16, 18 and 20 (module ABIs 93, 108, 115). On another
  // Node it loads a JS stand-in, which has none of uWS's own constants and listens otherwise:
  // evmux died at start with "callback is not a function".
  if (typeof EXCLUSIVE_PORT !== 'number') {
    throw new ListenError(
      process.env['UWS_USE_FALLBACK'] !== undefined
        ? 'UWS_USE_FALLBACK is set: the JS stand-in for uWebSockets.js lacks what evmux needs; unset it'
        : `uWebSockets.js (@trufflesuite/uws-js-unofficial) has no native build for Node.js ${process.version} (module ABI ${process.versions.modules}), only for Node.js 16, 18 and 20: run evmux on Node.js 20`,
    );
  }
  const app = uWS.App();
  const frontEndState: FrontEndState = { bodies: 0, answers: 0, stopped: false, closing: false };
  let listenSocket: uWS.us_listen_socket | undefined;
  // uWS closes a client silent for idleTimeout; the ring pings each client twice per timeout.
  const keepAlive = options.idleTimeoutSeconds > 0 ? new KeepAlive<UwsClientSocket<T>>((options.idleTimeoutSeconds * 1000) / 2) : undefined;

  app.ws<SocketState<T>>('/*', {
    compression: uWS.DISABLED,
    // uWS cuts a frame over its limit without a close frame (the client sees 1006). Frames up to
    // twice the limit reach the handler below instead, which closes with 1009 and a reason.
    maxPayloadLength: Math.min(options.maxPayloadBytes * 2, 2 ** 31 - 1),
    idleTimeout: uwsIdleTimeout(options.idleTimeoutSeconds),
    // No limit in uWS: over its limit it drops frames to the socket without a word, a gap in the
    // client's stream. evmux's own cap (session.ts) disconnects a slow client instead, and lets one
    // answer larger than the cap through whole.
    maxBackpressure: 0,
    // uWS would ping each client as its idle timer runs out, all at once for clients that
    // connected together; keepalive.ts spreads the pings instead.
    sendPingsAutomatically: false,
    upgrade: (res, req, context) => {
      const info = new HttpExchange(res, req, options.headers, frontEndState);
      const key = req.getHeader('sec-websocket-key');
      const protocol = req.getHeader('sec-websocket-protocol');
      const extensions = req.getHeader('sec-websocket-extensions');
      const decision = handlers.upgrade(info);
      if (!decision.accept) {
        // Closed after the answer: a refused client keeps no descriptor (limits.maxConnections).
        writeResponse(res, { status: decision.status, contentType: 'application/json', body: decision.body }, true);
        return;
      }
      const state: SocketState<T> = { pending: decision.data, wrapper: undefined };
      res.upgrade(state, key, protocol, extensions, context);
    },
    open: (ws) => {
      const state = ws.getUserData();
      const wrapper = new UwsClientSocket(ws, state.pending as T);
      state.wrapper = wrapper;
      state.pending = undefined;
      keepAlive?.add(wrapper);
      handlers.open(wrapper);
    },
    message: (ws, message, isBinary) => {
      const wrapper = ws.getUserData().wrapper;
      if (wrapper === undefined) return; // uWS delivers frames only after open
      if (message.byteLength > options.maxPayloadBytes) {
        handlers.refuse(wrapper, 1009, `frame of ${message.byteLength} bytes exceeds the ${options.maxPayloadBytes}-byte limit`);
        return;
      }
      if (isBinary) {
        handlers.refuse(wrapper, 1003, 'binary frames are not supported; send JSON-RPC as text');
        return;
      }
      const decoded = text(message);
      handlers.message(wrapper, decoded, decoded.length === message.byteLength);
    },
    drain: (ws) => {
      const wrapper = ws.getUserData().wrapper;
      if (wrapper !== undefined) handlers.drain(wrapper);
    },
    // uWS has queued the pong before this runs, with no limit of its own (maxBackpressure: 0).
    ping: (ws) => {
      const wrapper = ws.getUserData().wrapper;
      if (wrapper !== undefined) handlers.pinged(wrapper);
    },
    close: (ws, code, message) => {
      const wrapper = ws.getUserData().wrapper;
      if (wrapper === undefined) return;
      keepAlive?.remove(wrapper);
      wrapper.detach();
      // A frame past maxPayloadLength is cut by uWS itself (1006), where evmux closes smaller
      // oversized frames with 1009: told apart from a client's own 1009 (an answer over its limit).
      const reason = text(message);
      handlers.close(wrapper, code, reason, code === 1006 && reason === UWS_TOO_BIG);
    },
  });

  // The handlers are told before the answer: the client's address cannot be read after it.
  const bodies = new BodyDeadlines<HttpExchange>(options.bodyTimeoutMs, (exchange) => {
    handlers.bodyRefused('body_timeout', exchange);
    exchange.respond(bodyTimeout(options.bodyTimeoutMs), true);
  });

  app.post('/*', (res, req) => {
    const exchange = new HttpExchange(res, req, options.headers, frontEndState);
    exchange.awaitBody();
    res.onAborted(() => {
      bodies.done(exchange);
      if (exchange.abort()) handlers.answerCut(exchange);
    });
    const declared = Number(req.getHeader(CONTENT_LENGTH) || '0');
    if (declared > options.maxPayloadBytes) {
      handlers.bodyRefused('body_size', exchange);
      exchange.respond(tooLarge(options.maxPayloadBytes));
      return;
    }
    let chunks: Buffer[] | undefined;
    let size = 0;
    res.onData((chunk, isLast) => {
      if (exchange.aborted || exchange.answered) return;
      size += chunk.byteLength;
      if (size > options.maxPayloadBytes) {
        bodies.done(exchange);
        handlers.bodyRefused('body_size', exchange);
        exchange.respond(tooLarge(options.maxPayloadBytes));
        return;
      }
      if (!isLast) {
        if (chunks === undefined) bodies.watch(exchange);
        // uWS reuses the chunk's memory after this callback returns: keep a copy.
        (chunks ??= []).push(Buffer.from(chunk.slice(0)));
        return;
      }
      exchange.bodyIn();
      if (chunks !== undefined) bodies.done(exchange);
      // The usual body arrives in one chunk and is decoded before uWS reuses it, without a copy.
      const body = chunks === undefined ? text(chunk) : Buffer.concat([...chunks, Buffer.from(chunk)]).toString('utf8');
      try {
        // One character per byte is all ASCII, unless an invalid byte became one U+FFFD: that
        // character must go to the node as the three bytes of UTF-8, not written byte for byte.
        handlers.post(exchange, body, body.length === size && !body.includes('\uFFFD'));
      } catch {
        exchange.respond(POST_FAILED);
      }
    });
  });

  // CORS preflight for browser dapps posting JSON-RPC. The headers a dapp asks to send (an API key,
  // the session header) are allowed as asked: the API carries no cookies.
  app.options('/*', (res, req) => {
    const asked = req.getHeader('access-control-request-headers');
    writeResponse(res, {
      status: 204,
      contentType: 'text/plain',
      body: '',
      headers: {
        'access-control-allow-origin': '*',
        'access-control-allow-methods': 'POST, GET, OPTIONS',
        'access-control-allow-headers': HEADER_NAME_LIST.test(asked) ? asked : 'content-type, authorization',
        'access-control-max-age': '86400',
      },
    });
  });

  app.any('/*', (res, req) => {
    const exchange = new HttpExchange(res, req, options.headers, frontEndState);
    const method = req.getMethod();
    // An answer cut short is no longer one a shutdown waits for.
    res.onAborted(() => {
      exchange.abort();
    });
    // HEAD as GET without the body: load balancers health-check with either.
    const headOnly = method === 'head';
    const result = method === 'get' || headOnly ? handlers.get(exchange) : undefined;
    if (result === undefined) {
      exchange.respond(method === 'get' || headOnly
        ? { status: 404, contentType: 'text/plain', body: 'not found\n' }
        : { status: 405, contentType: 'text/plain', body: 'use POST for JSON-RPC; a GET of / names the other paths\n', headers: ALLOWED_METHODS }, false, headOnly);
      return;
    }
    Promise.resolve(result).then(
      (response) => exchange.respond(response, false, headOnly),
      () => exchange.respond(GET_FAILED, false, headOnly),
    );
  });

  let bound: { host: string; port: number } | undefined;
  // Exclusive: without it uSockets sets SO_REUSEPORT, and a second evmux started on the same port
  // listens without an error and takes a share of the clients.
  const listenOn = (host: string, port: number): Promise<number> =>
    new Promise<number>((resolve, reject) => {
      (app.listen as unknown as ListenWithOptions).call(app, host, port, EXCLUSIVE_PORT, (token) => {
        if (token === false) {
          reject(new ListenError(`cannot listen on ${listenAddress(host, port)}: in use, or not an address of this machine`));
          return;
        }
        listenSocket = token;
        resolve(uWS.us_socket_local_port(token as unknown as uWS.us_socket));
      });
    });
  const closeListener = (): void => {
    if (listenSocket !== undefined) uWS.us_listen_socket_close(listenSocket);
    listenSocket = undefined;
  };
  const stopListening = (): void => {
    frontEndState.stopped = true;
    closeListener();
  };

  return {
    listen: async (host, port) => {
      let picked = await listenOn(host, port);
      if (port === 0) {
        // uSockets sets SO_REUSEADDR only on a listener for a given port, and accepted sockets
        // inherit it; without it on them, listening again after a pause fails with EADDRINUSE.
        closeListener();
        picked = await listenOn(host, picked);
      }
      bound = { host, port: picked };
      return picked;
    },
    publish: (topic, message) => {
      app.publish(topic, message, false, false);
    },
    pause: closeListener,
    resume: async () => {
      if (frontEndState.stopped || bound === undefined || listenSocket !== undefined) return;
      await listenOn(bound.host, bound.port);
    },
    stopListening,
    busyExchanges: () => frontEndState.bodies + frontEndState.answers,
    close: () => {
      stopListening();
      frontEndState.closing = true;
      bodies.close();
      // In uWS.js 20.30, though its typings omit it: every socket of the app, listeners included.
      (app as unknown as { close(): void }).close();
    },
  };
}

function bodyTimeout(limit: number): HttpResponse {
  return {
    status: 408,
    contentType: 'application/json',
    headers: CORS_HEADERS,
    body: JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32600, message: `request body not received in full within ${limit} ms (limits.requestBodyTimeoutMs)` } }),
  };
}

function tooLarge(limit: number): HttpResponse {
  return {
    status: 413,
    contentType: 'application/json',
    headers: CORS_HEADERS,
    body: JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32600, message: `request body exceeds the ${limit}-byte limit (limits.maxRequestBytes)` } }),
  };
}
