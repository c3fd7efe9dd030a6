/**
 * evmux assembled: upstream pool, balancer, call router, subscriptions, front end, metrics. Owns
 * every long-lived piece and closes them in order on shutdown.
 */
import { performance } from 'node:perf_hooks';
import { createStrategy } from './balancer/strategy.js';
import type { Config } from './config/schema.js';
import { ClientRateLimit } from './jsonrpc/client-rate-limit.js';
import { Dispatcher, type DispatchContext } from './jsonrpc/dispatcher.js';
import { LimitExceededError, UpstreamUnavailableError } from './jsonrpc/errors.js';
import { sessionLabel, type Logger } from './log.js';
import { Metrics } from './metrics.js';
import { CallRouter } from './router/call-router.js';
import type { FilterKeeper } from './router/filter-keeper.js';
import { createMethodPolicy } from './router/method-policy.js';
import { connectionCap, MIN_RESERVE, openFilesLimit } from './runtime/open-files.js';
import { WarningThrottle } from './runtime/warning-throttle.js';
import { AcceptGuard } from './server/accept-guard.js';
import { CORS_HEADERS, type ClientSocket, type FrontEnd, type HttpResponse, type PostExchange, type RequestInfo, type UpgradeDecision } from './server/front-end.js';
import { startAdminServer, type AdminServer } from './server/admin-server.js';
import { addressBlock } from './server/address-block.js';
import { clientIpResolver, PROXY_PROTOCOL, type ClientIpResolver } from './server/client-ip.js';
import { OpenCalls, type OpenCall } from './server/open-calls.js';
import { ClientSession, type SessionData } from './server/session.js';
import { sessionKeyOf } from './server/session-key.js';
import { createUwsFrontEnd } from './server/uws-adapter.js';
import { SessionAffinity } from './subs/affinity.js';
import { SubscriptionManager } from './subs/subscription-manager.js';
import { STATUS_LIST_LIMIT } from './subs/subscription-status.js';
import { UpstreamPool } from './upstream/pool.js';
import type { HeldCalls } from './jsonrpc/held-calls.js';

const JSON_TYPE = 'application/json';
/**
 * How often a shutdown looks for WebSocket clients to close: one is closed once it has sent
 * nothing for a tick, so a call already on its way is read (and refused) first.
 */
const DRAIN_TICK_MS = 50;
/** The connection cap's refusals are logged at most this often (they are counted in a metric). */
const CAP_LOG_INTERVAL_MS = 60_000;

/** Who an HTTP call is from: its session key and its address. */
interface ClientOf {
  keyOf(info: RequestInfo): string;
  ipOf(info: RequestInfo): string;
}

/**
 * The dispatch context of one HTTP call, answered through its exchange. Only filter methods (the
 * session key and the client's address) and a busy node's fair queue (the key) need to know who
 * the call is from, so that is worked out on first use (the address costs a syscall). A class with
 * a prototype getter rather than an object literal with a getter closure per call: with the
 * literal, each call's objects survived scavenges into the old generation (BENCHMARKS.md, "HTTP:
 * per-call objects that outlived their call").
 */
class HttpCallContext implements DispatchContext, OpenCall {
  readonly transport = 'http';
  inFlight = 0;
  held: HeldCalls | undefined = undefined;
  previousOpen: OpenCall | undefined = undefined;
  nextOpen: OpenCall | undefined = undefined;
  readonly #exchange: PostExchange;
  readonly #client: ClientOf;
  readonly #answered: (context: HttpCallContext) => void;
  #sessionKey: string | undefined;
  #clientIp: string | undefined;
  #done = false;

  constructor(exchange: PostExchange, client: ClientOf, answered: (context: HttpCallContext) => void) {
    this.#exchange = exchange;
    this.#client = client;
    this.#answered = answered;
  }

  get sessionKey(): string {
    return (this.#sessionKey ??= this.#client.keyOf(this.#exchange));
  }

  /**
   * Over HTTP a client is its session key: its calls come on any connection. Marked as one, so that
   * a key a client chooses (a header, a path) is never a WebSocket connection's id or evmux's own.
   */
  get clientId(): string {
    return `http:${this.sessionKey}`;
  }

  get clientIp(): string {
    return (this.#clientIp ??= this.#client.ipOf(this.#exchange));
  }

  get closed(): boolean {
    return this.#exchange.aborted;
  }

  answer(response: Buffer | undefined): void {
    if (!this.#finish()) return;
    this.#exchange.respond(
      response === undefined
        ? { status: 204, contentType: JSON_TYPE, body: '', headers: CORS_HEADERS }
        : { status: 200, contentType: JSON_TYPE, body: response, headers: CORS_HEADERS },
    );
  }

  /** Stop counting this request as in flight, once; false if it already was. */
  #finish(): boolean {
    if (this.#done) return false;
    this.#done = true;
    this.#answered(this);
    return true;
  }

  /** Dispatch threw (a bug): the front end answers 500, and a late answer is dropped. */
  abandon(): void {
    this.#finish();
  }

  /**
   * Shut down before its answer came: answered 503 with an error (without it, the connection was
   * reset under the client). Its id is not known here (the body may be a batch): null, as for a
   * request whose id cannot be read.
   */
  cutShort(): void {
    if (!this.#finish()) return;
    this.#exchange.respond({ status: 503, contentType: JSON_TYPE, body: SHUT_DOWN_UNANSWERED, headers: CORS_HEADERS });
  }
}

const SHUT_DOWN_UNANSWERED = JSON.stringify({
  jsonrpc: '2.0',
  id: null,
  error: new UpstreamUnavailableError('evmux shut down before the node answered (shutdownGraceMs ran out): the call may have been carried out').toObject(),
});

/** A WebSocket upgrade refused for a limit: the HTTP status, and a -32005 error naming the limit. */
function limitRefusal(status: number, message: string): UpgradeDecision<SessionData> {
  return { accept: false, status, body: JSON.stringify({ jsonrpc: '2.0', id: null, error: new LimitExceededError(message).toObject() }) };
}

export class Gateway {
  readonly config: Config;
  readonly metrics: Metrics;
  readonly pool: UpstreamPool;
  readonly subscriptions: SubscriptionManager;
  readonly #logger: Logger;
  readonly #dispatcher: Dispatcher;
  readonly #filters: FilterKeeper;
  readonly #rateLimit: ClientRateLimit | undefined;
  readonly #frontEnd: FrontEnd;
  readonly #sessions = new Map<ClientSocket<SessionData>, ClientSession>();
  readonly #connectionsPerIp = new Map<string, number>();
  /** WebSocket connections held at most (limits.maxConnections, else from the open-files limit) */
  readonly #maxConnections: number | undefined;
  readonly #openFiles: number | undefined;
  #acceptGuard: AcceptGuard | undefined;
  /** when the cap's refusals were last logged (once a minute at most) */
  #capLoggedAt = -Infinity;
  /** HTTP calls not yet answered */
  readonly #httpCalls = new OpenCalls<HttpCallContext>();
  /** for client misbehaviour that can repeat at the client's own rate */
  readonly #warnings: WarningThrottle;
  /** For HttpCallContext, which asks only when it needs to. */
  readonly #clientOf: ClientOf = {
    keyOf: (info) => this.#sessionKey(info, this.#clientIpOf(info)),
    ipOf: (info) => this.#clientIpOf(info),
  };
  readonly #clientIp: ClientIpResolver;
  readonly #httpAnswered = (context: HttpCallContext): void => {
    this.#httpCalls.delete(context);
  };
  #port = 0;
  #admin: AdminServer | undefined;
  #closing: Promise<void> | undefined;

  private constructor(config: Config, logger: Logger) {
    this.config = config;
    this.#logger = logger;
    this.#warnings = new WarningThrottle(logger);
    this.#clientIp = clientIpResolver(config.proxy);
    this.#openFiles = openFilesLimit();
    this.#maxConnections = config.limits.maxConnections ?? connectionCap(this.#openFiles);
    this.#logConnectionCap(this.#openFiles);
    this.metrics = new Metrics(config.upstreams.map((upstream) => upstream.name));
    this.pool = new UpstreamPool(config, logger, this.metrics);
    this.metrics.collectUpstreamLoad(() => this.pool.upstreams.map((upstream) => upstream.snapshot()));
    const affinity = new SessionAffinity(this.pool, config.subscriptions.holdDownMs);
    const router = new CallRouter(this.pool, createStrategy(config.balancer), affinity, config, this.metrics, logger);
    const { requestsPerSecondPerClient, requestBurstPerClient } = config.limits;
    this.#rateLimit = requestsPerSecondPerClient > 0 ? new ClientRateLimit(requestsPerSecondPerClient, requestBurstPerClient) : undefined;
    this.#filters = router.filters;
    this.#dispatcher = new Dispatcher(createMethodPolicy(config.methods), router, config.limits, this.metrics, this.#rateLimit);
    this.#frontEnd = createUwsFrontEnd<SessionData>(
      {
        upgrade: (info) => this.#upgrade(info),
        open: (socket) => this.#open(socket),
        message: (socket, text, ascii) => this.#sessions.get(socket)?.onMessage(text, ascii),
        refuse: (socket, code, reason) => this.#sessions.get(socket)?.disconnect(code, reason, code === 1009 ? 'limit' : 'protocol'),
        drain: () => {},
        pinged: (socket) => this.#sessions.get(socket)?.checkBackpressure(),
        close: (socket, _code, _reason, tooLarge) => this.#close(socket, tooLarge),
        post: (info, body, ascii) => this.#post(info, body, ascii),
        bodyRefused: (reason, request) => {
          this.metrics.clientRejected(reason);
          if (reason === 'body_timeout') {
            this.#warnings.warn({ ...this.#httpClient(request), timeoutMs: config.limits.requestBodyTimeoutMs }, 'HTTP request body too slow: answered 408 and closed (limits.requestBodyTimeoutMs)');
          }
        },
        answerCut: (request) => {
          this.metrics.clientRejected('answer_unread');
          this.#warnings.warn(this.#httpClient(request), 'HTTP client read no part of its answer for 10 s: its connection was closed with the rest unsent');
        },
        // Open to pages of any origin, as the calls are: a dapp may check /readyz before it picks an endpoint.
        get: async (info) => ({ ...(await this.#route(info.path, info.query, 'clients')), headers: CORS_HEADERS }),
      },
      {
        maxPayloadBytes: config.limits.maxRequestBytes,
        bodyTimeoutMs: config.limits.requestBodyTimeoutMs,
        idleTimeoutSeconds: config.limits.idleTimeoutSeconds,
        headers: [
          ...(config.subscriptions.sessionKey.source === 'header' ? [config.subscriptions.sessionKey.name.toLowerCase()] : []),
          ...(config.proxy.trusted.length > 0 && config.proxy.header !== PROXY_PROTOCOL ? [config.proxy.header] : []),
        ],
      },
    );
    this.subscriptions = new SubscriptionManager(this.pool, affinity, this.#frontEnd.publish, config, this.metrics, logger);
  }

  static async start(config: Config, logger: Logger): Promise<Gateway> {
    const gateway = new Gateway(config, logger);
    gateway.pool.start();
    gateway.subscriptions.start();
    try {
      if (config.admin.port !== undefined) {
        const onError = (error: unknown): void => logger.error({ err: error }, 'admin request or listener failed');
        gateway.#admin = await startAdminServer(config.admin.host, config.admin.port, (path, query) => gateway.#route(path, query, 'admin'), onError);
        logger.info({ host: config.admin.host, port: gateway.#admin.port }, 'admin listening: /metrics /status /healthz /readyz');
      }
      gateway.#port = await gateway.#frontEnd.listen(config.host, config.port);
    } catch (error) {
      await gateway.close();
      throw error;
    }
    gateway.#acceptGuard = new AcceptGuard(gateway.#frontEnd, gateway.#openFiles, logger, gateway.metrics);
    logger.info({ host: config.host, port: gateway.#port, upstreams: config.upstreams.length }, 'evmux listening');
    return gateway;
  }

  #logConnectionCap(openFiles: number | undefined): void {
    const maxConnections = this.#maxConnections;
    this.#logger.info({ maxConnections: maxConnections ?? null, openFiles: openFiles ?? null }, 'client connection cap');
    if (maxConnections !== undefined && openFiles !== undefined && openFiles - maxConnections < MIN_RESERVE) {
      this.#logger.warn(
        { maxConnections, openFiles },
        `limits.maxConnections leaves fewer than ${MIN_RESERVE} of the open-files limit for node sockets and HTTP clients: raise the limit (ulimit -n) or lower the cap`,
      );
    }
  }

  /** False while the client port is closed for want of open files (AcceptGuard). */
  get #accepting(): boolean {
    return this.#acceptGuard?.accepting ?? true;
  }

  get port(): number {
    return this.#port;
  }

  /** The admin listener's port, when `admin.port` is set. */
  get adminPort(): number | undefined {
    return this.#admin?.port;
  }

  /** Resolves once at least one upstream is usable, or rejects after `timeoutMs`. */
  async waitUntilReady(timeoutMs = 10_000): Promise<void> {
    // Some node serves exactly when some node is usable (a fallback serves when no primary does).
    if (!(await this.pool.untilServing(performance.now() + timeoutMs))) throw new Error(`no upstream became usable within ${timeoutMs} ms`);
  }

  /**
   * Stop accepting connections and calls, let the calls under way finish and their answers be
   * written (up to the grace time), closing each WebSocket client with 1012 (service restart) as
   * soon as its own are out; then close what is left.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#logger.info('shutting down');
    this.#acceptGuard?.close();
    this.#frontEnd.stopListening();
    this.#dispatcher.refuseNewCalls();
    const deadline = performance.now() + this.config.shutdownGraceMs;
    // A tick first, whatever is in flight: requests already sent are read (and refused), not cut.
    do await new Promise((resolve) => setTimeout(resolve, DRAIN_TICK_MS));
    while (!this.#drainStep() && performance.now() < deadline);
    for (const session of [...this.#sessions.values()]) session.disconnect(1012, 'server shutting down', 'shutdown');
    for (const call of this.#httpCalls.all()) call.cutShort();
    this.subscriptions.close();
    this.#filters.close();
    this.pool.close();
    this.#rateLimit?.close();
    await this.#admin?.close();
    this.#frontEnd.close();
    this.metrics.close();
    this.#logger.info('shut down');
  }

  /**
   * One step of the drain: close each WebSocket client that has settled (ClientSession.settled: its
   * calls answered, the answers written, nothing more sent; closed before, the answers still in its
   * send buffer were lost with the socket). True once no client is left and every HTTP request is
   * in and answered, its answer written.
   */
  #drainStep(): boolean {
    for (const session of [...this.#sessions.values()]) {
      if (session.settled()) session.disconnect(1012, 'server shutting down', 'shutdown');
    }
    return this.#sessions.size === 0 && this.#httpCalls.size === 0 && this.#frontEnd.busyExchanges() === 0;
  }

  /** The client's address: the peer's, or behind a trusted proxy the one its header (or PROXY protocol header) names. */
  #clientIpOf(info: RequestInfo): string {
    const header = this.config.proxy.header;
    return this.#clientIp(info.ip, header === PROXY_PROTOCOL ? info.proxiedIp || undefined : info.headers[header]);
  }

  /** An HTTP client's log fields, as a WebSocket session's logger has them. */
  #httpClient(request: RequestInfo): { client: string; session: string } {
    const ip = this.#clientIpOf(request);
    return { client: ip, session: sessionLabel(this.#sessionKey(request, ip)) };
  }

  /** What the per-IP limits count `ip` as: an IPv6 address by its prefix (address-block.ts). */
  #blockOf(ip: string): string {
    return addressBlock(ip, this.config.limits.ipv6PrefixLength);
  }

  /** An IP session key is the address block too: one rate limit, queue turn and node for a host's prefix. */
  #sessionKey(info: RequestInfo, ip: string): string {
    return sessionKeyOf(info, this.#blockOf(ip), this.config.subscriptions.sessionKey);
  }

  #upgrade(info: RequestInfo): UpgradeDecision<SessionData> {
    if (this.#closing !== undefined) {
      return { accept: false, status: 503, body: '{"error":"server shutting down"}' };
    }
    if (this.#maxConnections !== undefined && this.#sessions.size >= this.#maxConnections) {
      this.metrics.clientRejected('connections');
      if (performance.now() - this.#capLoggedAt >= CAP_LOG_INTERVAL_MS) {
        this.#capLoggedAt = performance.now();
        this.#logger.warn({ maxConnections: this.#maxConnections }, 'client connection cap reached: WebSocket upgrades refused with 503');
      }
      return limitRefusal(503, `too many connections: this server holds ${this.#maxConnections} (limits.maxConnections); try again later`);
    }
    const ip = this.#clientIpOf(info);
    const block = this.#blockOf(ip);
    const count = this.#connectionsPerIp.get(block) ?? 0;
    if (count >= this.config.limits.maxConnectionsPerIp) {
      this.metrics.clientRejected('connections_per_ip');
      return limitRefusal(429, `too many connections from ${block}: at most ${this.config.limits.maxConnectionsPerIp} (limits.maxConnectionsPerIp)`);
    }
    return { accept: true, data: { ip, sessionKey: this.#sessionKey(info, ip) } };
  }

  #open(socket: ClientSocket<SessionData>): void {
    const session = new ClientSession(socket, {
      dispatcher: this.#dispatcher,
      subscriptions: this.subscriptions,
      telemetry: this.metrics,
      logger: this.#logger,
      maxSendBufferBytes: this.config.limits.maxSendBufferBytes,
    });
    this.#sessions.set(socket, session);
    const block = this.#blockOf(socket.data.ip);
    this.#connectionsPerIp.set(block, (this.#connectionsPerIp.get(block) ?? 0) + 1);
    this.metrics.clientConnected();
  }

  #close(socket: ClientSocket<SessionData>, tooLarge: boolean): void {
    const session = this.#sessions.get(socket);
    if (session === undefined) return;
    this.#sessions.delete(socket);
    const block = this.#blockOf(socket.data.ip);
    const count = (this.#connectionsPerIp.get(block) ?? 1) - 1;
    if (count <= 0) this.#connectionsPerIp.delete(block);
    else this.#connectionsPerIp.set(block, count);
    const reason = session.onClose();
    // A frame too large for the front end to read at all (over twice limits.maxRequestBytes).
    this.metrics.clientDisconnected(tooLarge ? 'limit' : reason);
  }

  /** Its context a class instance: see HttpCallContext. */
  #post(exchange: PostExchange, body: string, ascii: boolean): void {
    const context = new HttpCallContext(exchange, this.#clientOf, this.#httpAnswered);
    this.#httpCalls.add(context);
    try {
      this.#dispatcher.dispatch(body, context, ascii);
    } catch (error) {
      context.abandon();
      throw error;
    }
  }

  /**
   * GET routes of the client port and of the admin listener. With an admin listener, the client
   * port keeps the health checks (load balancers probe it) and leaves /status and /metrics to it.
   */
  async #route(path: string, query: string, listener: 'clients' | 'admin'): Promise<HttpResponse> {
    const adminElsewhere = listener === 'clients' && this.#admin !== undefined;
    switch (path) {
      case '/healthz':
        return { status: 200, contentType: JSON_TYPE, body: '{"status":"ok"}' };
      case '/readyz': {
        const usable = this.pool.usable().length;
        const accepting = this.#accepting;
        const ready = usable > 0 && accepting && this.#closing === undefined;
        return { status: ready ? 200 : 503, contentType: JSON_TYPE, body: JSON.stringify({ ready, usableUpstreams: usable, accepting }) };
      }
      case '/status':
        if (adminElsewhere) break;
        return { status: 200, contentType: JSON_TYPE, body: JSON.stringify(this.#status(new URLSearchParams(query).get('topics') === 'all'), null, 2) };
      case '/metrics':
        if (adminElsewhere) break;
        return { status: 200, contentType: this.metrics.registry.contentType, body: await this.metrics.exposition() };
    }
    const paths = adminElsewhere ? '/healthz /readyz (/status and /metrics are on the admin listener)' : '/healthz /readyz /status /metrics';
    return { status: 404, contentType: 'text/plain', body: `not found: try ${paths}\n` };
  }

  /** `allTopics`: every topic and stream of every upstream, not only those with the most clients. */
  #status(allTopics: boolean): unknown {
    const subscriptions = this.subscriptions.status(allTopics ? Number.POSITIVE_INFINITY : STATUS_LIST_LIMIT);
    return {
      clients: this.#sessions.size,
      maxClients: this.#maxConnections ?? null,
      accepting: this.#accepting,
      bestHead: this.pool.bestHead >= 0n ? this.pool.bestHead.toString() : null,
      filters: this.#filters.count,
      upstreams: this.pool.snapshot().map((upstream) => ({
        ...upstream,
        subscriptions: subscriptions.find((entry) => entry.upstream === upstream.name) ?? null,
      })),
    };
  }
}
