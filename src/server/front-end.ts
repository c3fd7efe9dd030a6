/**
 * What the gateway needs from its network front end. The only implementation is the
 * uWebSockets.js adapter; nothing else in evmux imports uWS.
 */

export interface RequestInfo {
  ip: string;
  path: string;
  /** raw query string without '?' */
  query: string;
  /** the headers named in FrontEndOptions.headers (lower-case names), when present */
  headers: Record<string, string>;
  /** the client address a PROXY protocol v2 header named at the connection's start; '' without one */
  readonly proxiedIp: string;
}

export interface ClientSocket<T> {
  readonly data: T;
  readonly closed: boolean;
  /** Queue a text frame (UTF-8 bytes or a string). Returns false when the socket is closed. */
  send(text: string | Buffer): boolean;
  /** Bytes queued for this client and not yet written to the kernel. */
  bufferedAmount(): number;
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  /** Graceful close with a code and a short reason (at most 123 bytes). */
  close(code: number, reason: string): void;
}

/** Browsers call JSON-RPC from any origin; the API carries no cookies, so a wildcard is safe. */
export const CORS_HEADERS: Readonly<Record<string, string>> = Object.freeze({ 'access-control-allow-origin': '*' });

export interface HttpResponse {
  status: number;
  contentType: string;
  body: string | Buffer;
  /** extra headers; read-only: the front end may reuse what it encoded for the same object */
  headers?: Readonly<Record<string, string>>;
}

/** A POST request that is answered once, when its response is ready; later answers are ignored. */
export interface PostExchange extends RequestInfo {
  /** the client went away before its answer */
  readonly aborted: boolean;
  respond(response: HttpResponse): void;
}

export type UpgradeDecision<T> = { accept: true; data: T } | { accept: false; status: number; body: string };

export interface FrontEndHandlers<T> {
  upgrade(info: RequestInfo): UpgradeDecision<T>;
  open(socket: ClientSocket<T>): void;
  /**
   * One text frame. `ascii`: every character is ASCII, so the frame's bytes are its characters one
   * for one and a part of the text can be written as bytes without encoding it (request-frame.ts).
   */
  message(socket: ClientSocket<T>, text: string, ascii: boolean): void;
  /**
   * A frame evmux does not accept (over the size limit: 1009, binary: 1003). The handler closes
   * the socket with this code and reason; the adapter does nothing else with the frame.
   */
  refuse(socket: ClientSocket<T>, code: 1003 | 1009, reason: string): void;
  drain(socket: ClientSocket<T>): void;
  /**
   * The client sent a ping and its pong is queued: a client that pings without reading grows its
   * send buffer with no frame of evmux's, so the send buffer cap is checked here too.
   */
  pinged(socket: ClientSocket<T>): void;
  /**
   * The socket closed, by either side. `tooLarge`: uWS cut it for a frame too large to read at all
   * (over twice FrontEndOptions.maxPayloadBytes); a 1009 the client sends is its own limit, not this.
   */
  close(socket: ClientSocket<T>, code: number, reason: string, tooLarge: boolean): void;
  /** POST with its body, answered through `exchange.respond`; a body over the size limit never reaches here (413). */
  post(exchange: PostExchange, body: string, ascii: boolean): void;
  /**
   * A POST body refused before it reached `post`: over FrontEndOptions.maxPayloadBytes (answered
   * 413), or not received in full within FrontEndOptions.bodyTimeoutMs (answered 408, its
   * connection closed).
   */
  bodyRefused(reason: 'body_size' | 'body_timeout', request: RequestInfo): void;
  /** A large HTTP answer the client had not read within uWS's 10 s: its connection was closed with part of it unsent. */
  answerCut(request: RequestInfo): void;
  /** GET routes; undefined = 404 */
  get(info: RequestInfo): Promise<HttpResponse> | HttpResponse | undefined;
}

export interface FrontEndOptions {
  maxPayloadBytes: number;
  /** time a POST body may take to arrive in full, from its first chunk */
  bodyTimeoutMs: number;
  idleTimeoutSeconds: number;
  /** lower-case names of the request headers the gateway reads; no others are copied per request */
  headers: readonly string[];
}

export interface FrontEnd {
  listen(host: string, port: number): Promise<number>;
  /** Send the same bytes to every socket subscribed to `topic`. */
  publish(topic: string, text: string): void;
  /** Stop accepting new connections for now; open ones stay, and connections not yet accepted are refused. */
  pause(): void;
  /** Listen again on the address `listen` bound (not after `stopListening` or `close`); rejects when that fails. */
  resume(): Promise<void>;
  /**
   * Stop accepting new connections for good; open ones stay, and every HTTP answer from now on
   * closes its connection (a keep-alive client opens its next one elsewhere).
   */
  stopListening(): void;
  /** HTTP requests whose body is still arriving, and answers handed over but not yet all written (large ones go as the client takes them). */
  busyExchanges(): number;
  /** Drop every connection left, idle HTTP keep-alive ones included (the last step of a shutdown). */
  close(): void;
}
