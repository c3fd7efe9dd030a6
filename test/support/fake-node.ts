/**
 * A scriptable fake Ethereum node for fault tests: one port serves JSON-RPC over WebSocket and
 * HTTP POST, backed by a SyntheticChain. Switches make it hang, answer garbage or errors, answer
 * slowly, drop pongs, stall its head stream, reorg or drop every connection - the failures a real
 * anvil node cannot be made to show on demand.
 */
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import type { RawData } from 'ws';
import { answerMessage } from './fake-node-answer.js';
import { defaultMethods, FakeRpcError } from './fake-node-methods.js';
import type { FakeClient, FakeMethod, FakeSubscription, SubscriptionKind } from './fake-node-methods.js';
import { SyntheticChain } from './synthetic-chain.js';
import type { FakeHeader } from './synthetic-chain.js';
import { logMatches } from './synthetic-logs.js';
import type { FakeLog, FakeLogInput } from './synthetic-logs.js';

export type { FakeHeader } from './synthetic-chain.js';
export type { FakeLog, FakeLogInput } from './synthetic-logs.js';
export type { SubscriptionKind } from './fake-node-methods.js';
export { FakeRpcError } from './fake-node-methods.js';

export interface FakeNodeOptions {
  /** @default 31337 */
  chainId?: number;
  /** auto-advance the chain and emit newHeads every N ms; 0 = only via advance() @default 0 */
  blockTimeMs?: number;
  /** initial height @default 100 */
  startHeight?: number;
  /** prefix mixed into hashes so two fake nodes can have different or same chains @default 'fake' */
  seed?: string;
  /** port to bind on 127.0.0.1; pass an old node's port to "restart" it @default 0 */
  port?: number;
  /** handshakes without these header values (names lower case) get 401, like a node behind an
   * authenticating proxy @default {} */
  requireHeaders?: Record<string, string>;
  /** a message over this is read, then refused by closing the socket with 1009 (message too big), as Besu does over 1 MiB @default Infinity */
  maxFrameBytes?: number;
  /** answers and notifications in binary frames, as Ganache 7 sends them to a client that writes binary (its wsBinary "auto") @default false */
  binaryFrames?: boolean;
}

export type FakeNodeMode = 'normal' | 'hang' | 'garbage' | 'error';

/** One open WebSocket connection as the node sees it. */
/** What FakeSocketView.calls leaves out: subscribing, and the questions every socket asks when it opens. */
const NOT_CALLS = /"method"\s*:\s*"(eth_(un)?subscribe|eth_chainId|net_version)"|"method"\s*:\s*"eth_getBlockByNumber"\s*,\s*"params"\s*:\s*\["0x0"/;

export interface FakeSocketView {
  /** subscriptions it holds */
  readonly subscriptions: number;
  /** requests it has sent other than eth_subscribe, eth_unsubscribe and the identity check every socket makes when it opens (eth_chainId, the genesis block, net_version) */
  readonly calls: number;
}

export interface FakeNodeStats {
  /** WebSocket connections open now */
  readonly connections: number;
  /** WebSocket connections accepted since start */
  readonly connectionsTotal: number;
  /** requests received per method (batch elements counted one by one, in every mode) */
  readonly requests: Map<string, number>;
  /** subscriptions held by open connections */
  readonly liveSubscriptions: number;
  readonly pingsReceived: number;
  /** sockets closed for a frame over maxFrameBytes (1009) */
  readonly closedForFrameSize: number;
  /** messages received in binary frames rather than text */
  readonly binaryMessages: number;
}

const MAX_HTTP_BODY = 5 * 1024 * 1024;

/** Strict, as anvil's JSON reader is: bytes that are not UTF-8 make a frame unreadable. */
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** The frame's text, or undefined when its bytes are not UTF-8. */
function rawText(data: RawData): string | undefined {
  const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
  try {
    return UTF8.decode(bytes);
  } catch {
    return undefined;
  }
}

export class FakeNode {
  readonly url: string;
  readonly httpUrl: string;
  readonly port: number;
  readonly stats: FakeNodeStats;

  /** 'normal' answers; 'hang' accepts frames and never answers; 'garbage' answers every request
   * with a non-JSON frame; 'error' answers with a JSON-RPC error {code:-32603} */
  mode: FakeNodeMode = 'normal';
  /** frames it cannot read, answered as anvil answers those: -32600 under id null, with no way to
   * tell which request it was */
  unreadable: ((text: string) => boolean) | undefined;
  /** delay before each response, ms */
  latencyMs = 0;
  /** when false the server does not answer ws pings (no pong) */
  answerPings = true;
  /** when false, advance() and reorg() still change the chain but send no newHeads or logs
   * notifications (a stall with the socket open) */
  emitHeads = true;
  /** when false, new WebSocket handshakes and HTTP requests get 503 (node down, port open) */
  acceptConnections = true;
  /** when set, WebSocket handshakes get this HTTP answer instead (a provider's 429 with Retry-After, a redirect) */
  handshakeAnswer: { status: string; headers?: Record<string, string>; body?: string } | undefined;
  /** kinds of subscription eth_subscribe answers with an error, and its message (a provider's cap) */
  readonly refusedKinds = new Map<SubscriptionKind, string>();
  /**
   * syncing subscriptions: undefined, refused as anvil refuses them; else served, and each new one
   * is sent `greeting` right after its reply when that is set, as reth does (geth: `false`, once
   * synced); with `inReplyWrite`, in the same write as the reply (one TCP chunk), as geth flushes
   * the notifications it held until the id was out. eth_syncing answers false whatever it says
   * (handle() changes that).
   */
  syncing: { greeting?: unknown; inReplyWrite?: boolean } | undefined;
  /** a refusal of one subscription's own (a filter the node does not take): its message, or undefined to serve it */
  refuse: ((subscription: FakeSubscription) => string | undefined) | undefined;
  /** the text of the last 1000 WebSocket frames received, oldest first */
  readonly frames: string[] = [];
  /** the request headers of every WebSocket handshake, refused ones included, oldest first */
  readonly handshakes: IncomingHttpHeaders[] = [];

  readonly #server: Server;
  readonly #wss: WebSocketServer;
  readonly #chain: SyntheticChain;
  readonly #builtins: Map<string, FakeMethod>;
  readonly #overrides = new Map<string, FakeMethod>();
  readonly #clients = new Set<FakeClient>();
  readonly #sockets = new Set<Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #requests = new Map<string, number>();
  /** per connection: requests other than eth_subscribe / eth_unsubscribe */
  readonly #calls = new Map<FakeClient, number>();
  #ticker: NodeJS.Timeout | undefined;
  readonly #counters = { pings: 0, total: 0, tooBig: 0, binary: 0 };
  readonly #maxFrameBytes: number;
  readonly #binaryFrames: boolean;
  #nextSubscription = 1;
  #closed = false;

  private constructor(server: Server, port: number, options: FakeNodeOptions) {
    const { chainId = 31337, blockTimeMs = 0, startHeight = 100, seed = 'fake', requireHeaders = {}, maxFrameBytes = Number.POSITIVE_INFINITY, binaryFrames = false } = options;
    this.#maxFrameBytes = maxFrameBytes;
    this.#binaryFrames = binaryFrames;
    this.#server = server;
    this.port = port;
    this.url = `ws://127.0.0.1:${port}`;
    this.httpUrl = `http://127.0.0.1:${port}`;
    this.#chain = new SyntheticChain({ seed, startHeight });
    this.#builtins = defaultMethods({
      chain: this.#chain,
      chainId,
      subscribe: (client, sub) => this.#subscribe(client, sub),
      unsubscribe: (client, id) => client.subs.delete(id),
      pendingTransaction: (hash) => this.#publish('newPendingTransactions', hash),
    });

    const clients = this.#clients;
    const counters = this.#counters;
    this.stats = {
      requests: this.#requests,
      get connections() { return clients.size; },
      get connectionsTotal() { return counters.total; },
      get pingsReceived() { return counters.pings; },
      get closedForFrameSize() { return counters.tooBig; },
      get binaryMessages() { return counters.binary; },
      get liveSubscriptions() { return [...clients].reduce((n, c) => n + c.subs.size, 0); },
    };

    // autoPong off: pongs are sent by hand so answerPings can withhold them
    this.#wss = new WebSocketServer({ noServer: true, autoPong: false });
    server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      // A client that gets a refusal may reset the connection before the answer is written.
      socket.on('error', () => {});
      if (!this.acceptConnections || this.#closed) {
        socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      this.handshakes.push(req.headers);
      if (this.handshakeAnswer !== undefined) {
        const { status, headers = {}, body = '' } = this.handshakeAnswer;
        const lines = Object.entries({ ...headers, Connection: 'close', 'Content-Length': String(Buffer.byteLength(body)) }).map(([name, value]) => `${name}: ${value}\r\n`);
        socket.end(`HTTP/1.1 ${status}\r\n${lines.join('')}\r\n${body}`);
        return;
      }
      if (Object.entries(requireHeaders).some(([name, value]) => req.headers[name] !== value)) {
        socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      this.#wss.handleUpgrade(req, socket, head, (ws) => this.#onConnection(ws));
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.#onHttp(req, res));

    if (blockTimeMs > 0) this.#ticker = setInterval(() => this.advance(1), blockTimeMs);
  }

  static async start(options: FakeNodeOptions = {}): Promise<FakeNode> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('fake node has no TCP address');
    return new FakeNode(server, address.port, options);
  }

  /** override or add a method: return a result, or throw {code, message} to answer with that error */
  handle(method: string, fn: (params: unknown[]) => unknown): void {
    this.#overrides.set(method, (params) => fn(params));
  }

  /** drop an override made with handle(), restoring the built-in behaviour */
  unhandle(method: string): void {
    this.#overrides.delete(method);
  }

  /** grow the chain by n blocks and notify newHeads (and logs subs: emit no logs unless addLog used) */
  advance(n = 1): void {
    for (const header of this.#chain.advance(n)) this.#announce(header);
  }

  /** replace the last `depth` blocks with a new branch of depth + `grow` blocks (different hashes) and
   * notify: removed logs (removed: true) of the old blocks first, then each new head with its logs */
  reorg(depth: number, grow = 1): void {
    const { removed, added } = this.#chain.reorg(depth, grow);
    if (this.emitHeads) for (const header of removed) this.#publishLogs(this.#chain.logsOf(header, true));
    for (const header of added) this.#announce(header);
  }

  /** send a newHeads notification for an arbitrary existing header (duplicates / out of order) */
  notifyHead(header: FakeHeader): void {
    this.#publish('newHeads', this.#chain.headerJson(header));
  }

  /** send `result` as a notification to every subscription of this kind (malformed payloads too) */
  notify(kind: SubscriptionKind, result: unknown): void {
    this.#publish(kind, result);
  }

  /**
   * Attach a log to the canonical block at `blockNumber` if it exists (silently: only eth_getLogs
   * sees it, as if the notification was missed), else queue it for the block that later takes
   * that height, which delivers it to logs subscriptions.
   * @default blockNumber: the next block (head + 1)
   */
  addLog(input: FakeLogInput, blockNumber?: bigint): void {
    this.#chain.addLog(input, blockNumber);
  }

  /** logs of the canonical block at `number` */
  logsAt(number: bigint): FakeLog[] {
    const header = this.#chain.header(number);
    return header === undefined ? [] : this.#chain.logsOf(header);
  }

  /** send any raw text frame to every connected client */
  sendRaw(frame: string): void {
    for (const client of this.#clients) this.#send(client, frame);
  }

  /**
   * On each call socket (one that has made calls and holds no subscription), start a text frame
   * that never ends: a header for 100 MB, then `bytesPerSecond` of it a second. What the node sends
   * on that socket afterwards (pongs, answers) goes inside it, as payload. Stopped by close().
   */
  trickleEndlessMessage(bytesPerSecond: number): void {
    for (const client of this.#clients) {
      if (client.subs.size > 0 || (this.#calls.get(client) ?? 0) === 0) continue;
      const socket = (client.ws as unknown as { _socket: Socket })._socket;
      const header = Buffer.from([0x81, 127, 0, 0, 0, 0, 0, 0, 0, 0]);
      header.writeUInt32BE(100_000_000, 6);
      socket.write(header);
      const timer = setInterval(() => {
        if (!socket.destroyed) socket.write(Buffer.alloc(Math.ceil(bytesPerSecond / 10), 0x61));
      }, 100);
      this.#timers.add(timer);
    }
  }

  /** canonical header at height */
  header(number: bigint): FakeHeader | undefined {
    return this.#chain.header(number);
  }

  /** any header that ever existed on this node, canonical or orphaned */
  headerByHash(hash: string): FakeHeader | undefined {
    return this.#chain.headerByHash(hash)?.header;
  }

  get head(): FakeHeader {
    return this.#chain.head;
  }

  /** Each open WebSocket connection: what it holds and what it asked. */
  sockets(): FakeSocketView[] {
    return [...this.#clients].map((client) => this.#view(client));
  }

  /** Close abruptly the connections `which` picks; how many it closed. */
  dropSockets(which: (socket: FakeSocketView) => boolean): number {
    let dropped = 0;
    for (const client of [...this.#clients]) {
      if (!which(this.#view(client))) continue;
      client.ws.terminate();
      this.#clients.delete(client);
      dropped++;
    }
    return dropped;
  }

  /**
   * Send each connection a close frame, then stop reading it and leave its TCP connection open: the
   * client waits in CLOSING for a close that does not come (as behind a proxy that stopped relaying).
   */
  closeFramesOnly(): void {
    for (const socket of this.#sockets) {
      socket.pause();
      socket.write(Buffer.from([0x88, 0x02, 0x03, 0xe8]));
    }
  }

  /** close all client sockets abruptly (simulate a dropped connection) without stopping the server */
  dropConnections(): void {
    for (const client of this.#clients) client.ws.terminate();
    this.#clients.clear();
    for (const socket of this.#sockets) socket.destroy();
  }

  #view(client: FakeClient): FakeSocketView {
    return { subscriptions: client.subs.size, calls: this.#calls.get(client) ?? 0 };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#ticker);
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    this.dropConnections();
    this.#wss.close();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #onConnection(ws: WebSocket): void {
    const client: FakeClient = { ws, subs: new Map() };
    this.#clients.add(client);
    this.#counters.total += 1;
    ws.on('message', (data, isBinary) => {
      if (isBinary) this.#counters.binary += 1;
      const text = rawText(data);
      if (text !== undefined && text.length > this.#maxFrameBytes) {
        // Read whole, then refused: the 1009 arrives before the TCP connection closes. (A node
        // that stops reading a frame over its limit may cut the connection with data unread, which
        // the client sees as a reset, 1006, not told apart from a node failing.)
        this.#counters.tooBig += 1;
        ws.close(1009, 'message too big');
        return;
      }
      if (text === undefined) {
        this.#send(client, JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'parse error: not UTF-8' } }));
        return;
      }
      if (this.frames.push(text) > 1000) this.frames.shift();
      if (!NOT_CALLS.test(text)) this.#calls.set(client, (this.#calls.get(client) ?? 0) + 1);
      this.#receive(text, client, (body) => this.#send(client, body));
    });
    ws.on('ping', (data) => {
      this.#counters.pings += 1;
      if (this.answerPings) ws.pong(data);
    });
    ws.on('close', () => {
      this.#clients.delete(client);
      this.#calls.delete(client);
    });
    // abrupt drops surface as socket errors; 'close' follows and cleans up
    ws.on('error', () => undefined);
  }

  #onHttp(req: IncomingMessage, res: ServerResponse): void {
    if (!this.acceptConnections) {
      res.writeHead(503).end();
      return;
    }
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST' }).end();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_HTTP_BODY) {
        res.writeHead(413).end();
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on('end', () => {
      this.#receive(Buffer.concat(chunks).toString('utf8'), undefined, (body) => {
        if (res.writableEnded || res.destroyed) return;
        res.writeHead(200, { 'content-type': 'application/json' }).end(body ?? '');
      });
    });
  }

  /** Mode is read when the frame arrives; the latency delay runs before the methods do. */
  #receive(text: string, client: FakeClient | undefined, reply: (body: string | undefined) => void): void {
    const mode = this.mode;
    let message: unknown;
    let parsed = true;
    try {
      message = JSON.parse(text);
    } catch {
      parsed = false;
    }
    if (parsed) this.#count(message);
    if (mode === 'hang') return;
    if (this.unreadable?.(text) === true) {
      reply(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Invalid request' } }));
      return;
    }
    this.#later(this.latencyMs, () => {
      const lookup = (method: string): FakeMethod | undefined => this.#overrides.get(method) ?? this.#builtins.get(method);
      answerMessage({ parsed, message, mode, client, lookup })
        .then((body) => {
          if (!this.#closed) reply(body);
        })
        .catch(() => undefined);
    });
  }

  #count(message: unknown): void {
    for (const item of Array.isArray(message) ? message : [message]) {
      const method: unknown = typeof item === 'object' && item !== null ? (item as { method?: unknown }).method : undefined;
      if (typeof method !== 'string') continue;
      this.#requests.set(method, (this.#requests.get(method) ?? 0) + 1);
    }
  }

  #later(ms: number, fn: () => void): void {
    if (ms <= 0) {
      fn();
      return;
    }
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      fn();
    }, ms);
    this.#timers.add(timer);
  }

  #subscribe(client: FakeClient, subscription: FakeSubscription): string {
    if (subscription.kind === 'syncing' && this.syncing === undefined) throw new FakeRpcError(-32602, 'unsupported subscription type syncing');
    const refusal = this.refusedKinds.get(subscription.kind) ?? this.refuse?.(subscription);
    if (refusal !== undefined) throw new FakeRpcError(-32000, refusal);
    // port and counter: ids differ between fake nodes, so a leaked upstream id is noticed
    const id = `0x${this.port.toString(16).padStart(4, '0')}${(this.#nextSubscription++).toString(16).padStart(28, '0')}`;
    client.subs.set(id, subscription);
    if (subscription.kind === 'syncing' && this.syncing !== undefined && 'greeting' in this.syncing) this.#greet(client, id, this.syncing.greeting);
    return id;
  }

  /** Right after the reply (sent once the method returns), as reth writes it; or in one write with it. */
  #greet(client: FakeClient, id: string, status: unknown): void {
    // Corked until the greeting is written: the reply, written meanwhile, goes in the same write.
    const socket = this.syncing?.inReplyWrite === true ? (client.ws as unknown as { _socket: Socket })._socket : undefined;
    socket?.cork();
    setImmediate(() => {
      if (client.subs.has(id)) this.#send(client, notification(id, status));
      socket?.uncork();
    });
  }

  #announce(header: FakeHeader): void {
    if (!this.emitHeads) return;
    this.#publish('newHeads', this.#chain.headerJson(header));
    this.#publishLogs(this.#chain.logsOf(header));
  }

  #publishLogs(logs: FakeLog[]): void {
    for (const log of logs) {
      for (const client of this.#clients) {
        for (const [id, sub] of client.subs) {
          if (sub.kind === 'logs' && logMatches(sub.criteria, log)) this.#send(client, notification(id, log));
        }
      }
    }
  }

  #publish(kind: SubscriptionKind, result: unknown): void {
    for (const client of this.#clients) {
      for (const [id, sub] of client.subs) if (sub.kind === kind) this.#send(client, notification(id, result));
    }
  }

  #send(client: FakeClient, body: string | undefined): void {
    if (body !== undefined && client.ws.readyState === WebSocket.OPEN) client.ws.send(body, { binary: this.#binaryFrames });
  }
}

function notification(subscription: string, result: unknown): string {
  return JSON.stringify({ jsonrpc: '2.0', method: 'eth_subscription', params: { subscription, result } });
}
