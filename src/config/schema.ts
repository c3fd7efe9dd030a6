/**
 * The one schema for evmux settings: types, defaults and validation. Config files, CLI flags and
 * tests all go through `parseConfig`; unknown keys are errors so a typo never silently falls back
 * to a default.
 */
import { constants } from 'node:buffer';
import { isIP } from 'node:net';
import { z } from 'zod';
import { strategyKinds } from '../balancer/strategy.js';
import { trustedEntryProblem } from '../server/client-ip.js';
import { HEADER_NAME } from '../server/header-name.js';

/**
 * The largest number any count or time may be: Node's timers take at most 2^31 - 1 ms (about 24.8
 * days) and fire after 1 ms for more, so a huge value meant as "never" would mean "at once".
 */
export const MAX_SETTING = 2 ** 31 - 1;
const ms = (def: number) => z.number().int().min(0).max(MAX_SETTING).default(def);
const positive = (def: number) => z.number().int().min(1).max(MAX_SETTING).default(def);

const upstreamUrl = z.string().superRefine((value, ctx) => {
  const problem = upstreamUrlProblem(value);
  if (problem !== undefined) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
});

function upstreamUrlProblem(value: string): string | undefined {
  // URLs (WHATWG, which Node and ws parse by) have no zone ids: it was refused as no URL at all.
  if (/^wss?:\/\/(?:[^@/]*@)?\[[^\]]*%/i.test(value)) {
    return 'has an IPv6 zone id (%…), which a ws:// URL cannot carry: use an address of the node that needs none (global, unique local or loopback)';
  }
  if (!/^wss?:\/\/[^\s]+$/i.test(value) || !URL.canParse(value)) return 'must be a ws:// or wss:// URL';
  // ws refuses one at connect time; a fragment is never sent to a server anyway.
  if (value.includes('#')) return 'must not have a #fragment';
  return undefined;
}

/**
 * A listen address: an IP address, an IPv6 one with or without the brackets a URL puts around it
 * (`[::1]` was taken as a name no machine has, and refused as "in use"), or a host name.
 */
const listenHost = z
  .string()
  .min(1)
  .transform((value) => (value.startsWith('[') && value.endsWith(']') ? value.slice(1, -1) : value))
  .refine((value) => isIP(value) !== 0 || /^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(value), {
    message: 'must be an IP address (0.0.0.0, 127.0.0.1, ::, ::1 or [::1]) or a host name',
  });

/** An HTTP header name: a token of RFC 9110. */
const headerName = z.string().regex(HEADER_NAME, 'must be an HTTP header name (letters, digits and !#$%&\'*+.^_`|~-)');

/** Handshake headers `ws` writes itself; a configured one would break the upgrade. */
const HANDSHAKE_HEADERS = new Set(['connection', 'upgrade', 'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol']);

const upstreamHeaders = z
  .record(
    headerName,
    z.string().regex(/^[\t\x20-\x7e\x80-\xff]*$/, 'must be printable ASCII or Latin-1 text, without line breaks'),
  )
  .superRefine((headers, ctx) => {
    const seen = new Set<string>();
    for (const name of Object.keys(headers)) {
      const lower = name.toLowerCase();
      if (HANDSHAKE_HEADERS.has(lower)) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: [name], message: 'is part of the WebSocket handshake and set by evmux' });
      } else if (seen.has(lower)) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: [name], message: 'is given twice (header names are case-insensitive)' });
      }
      seen.add(lower);
    }
  });

const upstreamSchema = z
  .object({
    /** Label used in logs, metrics and /status. @default "u<index>" */
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 _ . -').optional(),
    url: upstreamUrl,
    /**
     * HTTP headers sent with the WebSocket handshake to this node, e.g. `Authorization: Bearer …`
     * for a node behind an authenticating proxy. Values are never logged. @default {}
     */
    headers: upstreamHeaders.default({}),
    /** Relative share of calls and ring keys. @default 1 */
    weight: z.number().int().min(1).max(1000).default(1),
    /**
     * "fallback": takes calls and subscriptions only while no "primary" node is usable (a paid
     * provider behind your own nodes). Its health is checked all along, so it is ready. @default "primary"
     */
    role: z.enum(['primary', 'fallback']).default('primary'),
    /**
     * Persistent WebSocket connections kept open to this node. One by default: calls made together
     * leave in one write and come back in one read; spread over two sockets, each side made twice
     * the system calls (BENCHMARKS.md, "One socket per node"). More help only where one large answer
     * would hold up the small ones behind it on a slow link. @default 1
     */
    connections: z.number().int().min(1).max(64).default(1),
    /**
     * "own": this node's subscriptions get a socket of their own, so their notifications never
     * wait behind a large answer on a call socket (a call socket stands in while it is down).
     * "shared": they ride on a call socket, one fewer connection to the node. @default "own"
     */
    streamSocket: z.enum(['own', 'shared']).default('own'),
    /** Requests in flight at once on this node; more wait in a bounded queue. @default 256 */
    maxConcurrency: positive(256),
    /** Requests allowed to wait for a slot; beyond it the call goes to another node. @default 1024 */
    maxQueue: z.number().int().min(0).max(MAX_SETTING).default(1024),
    /**
     * Request bytes sent on one socket to this node that it may not have read yet (not answered,
     * nor anything sent after them); more calls wait in the queue, client by client (a call goes
     * whenever the socket is under this, however large). Behind a link slower
     * than evmux writes, one client's large requests otherwise piled up ahead of every other
     * client's calls, and of the pings and probes that tell whether the node is alive. @default 1048576
     */
    maxBytesInFlight: z.number().int().min(1024).max(MAX_SETTING).default(1_048_576),
  })
  .strict();

const healthSchema = z
  .object({
    /** How often each upstream is probed with eth_blockNumber. @default 1000 */
    probeIntervalMs: positive(1000),
    /** A probe slower than this counts as failed. @default 2000 */
    probeTimeoutMs: positive(2000),
    /** Consecutive failed probes that mark an upstream down. @default 2 */
    failureThreshold: positive(2),
    /** Consecutive good probes that mark it up again. @default 2 */
    recoveryThreshold: positive(2),
    /** An upstream more than this many blocks behind the best one gets no traffic. @default 5 */
    maxLagBlocks: z.number().int().min(0).max(MAX_SETTING).default(5),
    /** A head that does not move for this long while another upstream's does marks it stalled. @default 15000 */
    stallMs: positive(15_000),
  })
  .strict();

const heartbeatSchema = z
  .object({
    /** Ping interval on every upstream socket. @default 5000 */
    intervalMs: positive(5000),
    /** No pong within this time: the socket is terminated and reconnected. @default 5000 */
    timeoutMs: positive(5000),
  })
  .strict();

const reconnectSchema = z
  .object({
    /** First reconnect delay ceiling; doubles each attempt, full jitter. @default 100 */
    baseMs: positive(100),
    /** Largest reconnect delay ceiling. @default 10000 */
    maxMs: positive(10_000),
  })
  .strict();

const breakerSchema = z
  .object({
    /** Consecutive transport errors or timeouts that open the breaker. @default 5 */
    failureThreshold: positive(5),
    /** How long it stays open before one trial request. @default 5000 */
    openMs: positive(5000),
    /** Trial requests let through while half-open. @default 1 */
    halfOpenTrials: positive(1),
  })
  .strict();

const retrySchema = z
  .object({
    /** Attempts per call, each on a different upstream when one exists. @default 3 */
    maxAttempts: z.number().int().min(1).max(10).default(3),
    /** Backoff ceiling before the second attempt; doubles, full jitter. @default 10 */
    backoffBaseMs: ms(10),
    /** @default 200 */
    backoffMaxMs: ms(200),
    /** Total time a call may take including retries. @default 15000 */
    deadlineMs: positive(15_000),
  })
  .strict();

const limitsSchema = z
  .object({
    /**
     * Largest WebSocket frame or HTTP body accepted from a client. 5 MiB, geth's HTTP limit: a
     * signed transaction with six blobs is about 1.6 MB of hex. At most Node's longest string
     * (512 MiB): each request is read as one, and past it one request threw out of a uWS handler and
     * took the process down. @default 5242880
     */
    maxRequestBytes: z
      .number()
      .int()
      .min(1024)
      .max(constants.MAX_STRING_LENGTH, { message: `must be at most ${constants.MAX_STRING_LENGTH}, the longest string Node can make (each request is read as one)` })
      .default(5 * 1024 * 1024),
    /**
     * Time an HTTP request body may take to arrive in full, from its first bytes (geth's
     * `--http.readtimeout` is 30 s too). uWebSockets.js closes only a connection sending under 16 KB
     * in 10 s: at 2 KB/s a 5 MiB body would hold its connection for 45 minutes. @default 30000
     */
    requestBodyTimeoutMs: z.number().int().min(100).max(MAX_SETTING).default(30_000),
    /**
     * Largest answer taken from a node. A bigger one is skipped unread (frame-reader.ts) and the
     * call is refused with -32602 rather than sent to every node.
     * At most Node's longest string (512 MiB): the answers evmux parses become one. @default 268435456
     */
    maxAnswerBytes: z
      .number()
      .int()
      .min(64 * 1024)
      .max(constants.MAX_STRING_LENGTH, { message: `must be at most ${constants.MAX_STRING_LENGTH}, the longest string Node can make (the answers evmux parses become one)` })
      .default(256 * 1024 * 1024),
    /**
     * Requests per second one client may send (each batch element counts), 0 = no limit. A client
     * is what subscriptions.sessionKey names: its IP, or an API key. @default 0
     */
    requestsPerSecondPerClient: z.number().min(0).max(MAX_SETTING).default(0),
    /** Requests a client may send at once before the rate applies; 0 = one second's worth. @default 0 */
    requestBurstPerClient: z.number().int().min(0).max(MAX_SETTING).default(0),
    /**
     * Largest batch, as geth's (viem sends every call of a tick as one batch of up to 1,000). Its
     * calls past maxInFlightPerConnection wait for a slot. @default 1000
     */
    maxBatchSize: positive(1000),
    /** Open WebSocket connections per client IP. @default 200 */
    maxConnectionsPerIp: positive(200),
    /**
     * The leading bits of an IPv6 address that name one client for every per-IP limit: a host is
     * given a whole prefix and may use any address in it. 128 counts each address on its own. @default 64
     */
    ipv6PrefixLength: z.number().int().min(1).max(128).default(64),
    /**
     * Open WebSocket connections in all; unset, the open-files limit less a reserve (a tenth, at
     * least 256) for node sockets, HTTP clients and the admin listener (src/runtime/open-files.ts).
     */
    maxConnections: z.number().int().min(1).max(MAX_SETTING).optional(),
    /** Calls in flight per WebSocket connection (or per HTTP batch). @default 128 */
    maxInFlightPerConnection: positive(128),
    /** Subscriptions one connection may hold. @default 100 */
    maxSubscriptionsPerConnection: positive(100),
    /**
     * Distinct logs filters one client IP may hold, over all its connections, so that one address
     * cannot take every filter subscriptions.maxLogFiltersPerUpstream allows. @default 1000
     */
    maxLogFiltersPerIp: positive(1000),
    /**
     * Filters (eth_newFilter, eth_newBlockFilter, eth_newPendingTransactionFilter) one client IP may
     * have installed through evmux at once; one uninstalled, or not polled for five minutes, no
     * longer counts. Each lives on a node, which keeps what it matches until polled. @default 1000
     */
    maxInstalledFiltersPerIp: positive(1000),
    /** Bytes queued to a slow client before it is disconnected (close 1013). @default 4194304 */
    maxSendBufferBytes: z.number().int().min(16 * 1024).max(MAX_SETTING).default(4 * 1024 * 1024),
    /** Addresses in one logs filter. @default 1000 */
    maxFilterAddresses: positive(1000),
    /** Topics in one position of a logs filter. @default 100 */
    maxFilterTopicsPerPosition: positive(100),
    /**
     * WebSocket clients silent this many seconds are closed (0 = never); evmux pings each one twice
     * per timeout. uWebSockets.js counts in 4 s steps and refuses 1-7. @default 120
     */
    idleTimeoutSeconds: z
      .number()
      .int()
      .max(960)
      .refine((value) => value === 0 || value >= 8, { message: 'must be 0 (never) or from 8 to 960 seconds' })
      .default(120),
  })
  .strict();

const methodsSchema = z
  .object({
    /** Method patterns allowed (`eth_*` style globs). @default ["eth_*","net_*","web3_*"] */
    allow: z.array(z.string().min(1)).default(['eth_*', 'net_*', 'web3_*']),
    /** Patterns refused even when allowed. */
    deny: z
      .array(z.string().min(1))
      .default(['admin_*', 'debug_*', 'personal_*', 'miner_*', 'txpool_*', 'anvil_*', 'evm_*', 'hardhat_*']),
    /**
     * Per-attempt timeouts of methods that need more (or less) than requestTimeoutMs, by exact
     * name: `{ eth_getLogs: 30000 }`. The call's deadline grows to fit one such attempt. @default {}
     */
    timeoutMs: z
      .record(z.string().regex(/^[A-Za-z][A-Za-z0-9_]*$/, 'must be a method name, e.g. eth_getLogs'), z.number().int().min(1).max(600_000))
      .default({}),
  })
  .strict();

const sessionKeySchema = z
  .object({
    /** Where a client's session key comes from: the client IP, a query parameter, a header, or the
     * first URL path segment (an API key in ws://host/<key>); falls back to the IP. @default "ip" */
    source: z.enum(['ip', 'query', 'header', 'path']).default('ip'),
    /** Query parameter or header name when source is query or header. @default "session" */
    name: z.string().min(1).default('session'),
  })
  .strict()
  // A header name no client can send (a space, a colon, non-ASCII) left every client on its IP.
  .refine((key) => key.source !== 'header' || HEADER_NAME.test(key.name), {
    message: "with source 'header', name must be an HTTP header name (letters, digits and !#$%&'*+.^_`|~-)",
    path: ['name'],
  });

const proxySchema = z
  .object({
    /**
     * Addresses and CIDR ranges of the load balancers or ingresses in front of evmux. A connection
     * from one of them is taken to be from the client its header names. @default []
     */
    trusted: z
      .array(
        z.string().superRefine((entry, ctx) => {
          const problem = trustedEntryProblem(entry);
          if (problem !== undefined) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
        }),
      )
      .default([]),
    /** Header naming the client: `x-forwarded-for` (read from the right), `forwarded` (RFC 7239), one like
     * `x-real-ip`, or `proxy-protocol` for the PROXY protocol v2 header a TCP load balancer sends. @default "x-forwarded-for" */
    header: headerName.transform((name) => name.toLowerCase()).default('x-forwarded-for'),
  })
  .strict();

const subscriptionsSchema = z
  .object({
    /** An upstream subscription outlives its last client by this long. @default 10000 */
    gracePeriodMs: ms(10_000),
    /** Most blocks replayed after a failover or gap; past it the stream jumps to the head. @default 128 */
    replayMaxBlocks: positive(128),
    /** Most time spent on one replay before jumping to the head. @default 10000 */
    replayMaxMs: positive(10_000),
    /** A returning upstream gets its ring keys back after being healthy this long. @default 5000 */
    holdDownMs: ms(5000),
    /** Delivered heads remembered per stream for reorg handling. @default 256 */
    historyBlocks: z.number().int().min(16).max(MAX_SETTING).default(256),
    /**
     * Distinct logs filters (upstream eth_subscribe) held on one node, those in their grace period
     * included. A subscribe that would add one more is refused; failovers never are. @default 10000
     */
    maxLogFiltersPerUpstream: positive(10_000),
    sessionKey: sessionKeySchema.default({}),
  })
  .strict();

const adminSchema = z
  .object({
    /**
     * A listener of its own for /metrics and /status (and /healthz, /readyz); unset, they are
     * served on `port` beside the JSON-RPC endpoint. 0 picks a free port.
     */
    port: z.number().int().min(0).max(65_535).optional(),
    /** @default "127.0.0.1" */
    host: listenHost.default('127.0.0.1'),
  })
  .strict();

export const configSchema = z
  .object({
    /** @default "127.0.0.1" */
    host: listenHost.default('127.0.0.1'),
    /** @default 8547 */
    port: z.number().int().min(0).max(65_535).default(8547),
    /** @default "info" */
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    // A filter id names its upstream in one byte whose high bit marks an alias (router/filter-id.ts).
    upstreams: z.array(upstreamSchema).min(1, 'needs at least one upstream').max(128, 'at most 128 upstreams: a filter id names its upstream in 7 bits'),
    /**
     * The chain every upstream must serve (its eth_chainId). Unset: learned from the first node to
     * answer. A node on another chain takes no traffic.
     */
    chainId: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
    /** @default "least-connections" */
    balancer: z.enum(strategyKinds as [string, ...string[]]).default('least-connections'),
    /** Per-attempt timeout for a call to an upstream. @default 5000 */
    requestTimeoutMs: positive(5000),
    health: healthSchema.default({}),
    heartbeat: heartbeatSchema.default({}),
    reconnect: reconnectSchema.default({}),
    breaker: breakerSchema.default({}),
    retry: retrySchema.default({}),
    limits: limitsSchema.default({}),
    methods: methodsSchema.default({}),
    subscriptions: subscriptionsSchema.default({}),
    proxy: proxySchema.default({}),
    admin: adminSchema.default({}),
    /** On SIGTERM, in-flight calls get this long to finish. @default 5000 */
    shutdownGraceMs: ms(5000),
    /** V8's and libuv's helper threads at idle CPU priority (SCHED_IDLE): "auto" when evmux may run
     * on one CPU only, "idle" always, "normal" never (see src/runtime/helper-threads.ts). Only for a
     * CPU no busy process shares: the event loop waits on those threads at times. @default "normal" */
    helperThreads: z.enum(['auto', 'idle', 'normal']).default('normal'),
  })
  .strict()
  .superRefine((config, ctx) => {
    const seen = new Set<string>();
    config.upstreams.forEach((upstream, index) => {
      const name = upstream.name ?? `u${index}`;
      if (seen.has(name)) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['upstreams', index, 'name'], message: `duplicate upstream name "${name}"` });
      }
      seen.add(name);
    });
    if (config.admin.port !== undefined && config.admin.port !== 0 && config.admin.port === config.port) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['admin', 'port'], message: `must differ from port (${config.port}): it is a listener of its own` });
    }
    if (config.retry.backoffMaxMs < config.retry.backoffBaseMs) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['retry', 'backoffMaxMs'], message: 'must be >= retry.backoffBaseMs' });
    }
  });

type ParsedConfig = z.output<typeof configSchema>;
export type UpstreamConfig = ParsedConfig['upstreams'][number] & { name: string };
export type Config = Omit<ParsedConfig, 'upstreams' | 'balancer'> & {
  upstreams: UpstreamConfig[];
  balancer: import('../balancer/strategy.js').StrategyKind;
};

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** A key's place in the settings as messages name it: `upstreams[0].url`; '' for the root. */
export function keyPath(path: ReadonlyArray<string | number>): string {
  return path.map((part) => (typeof part === 'number' ? `[${part}]` : `.${part}`)).join('').replace(/^\./, '');
}

function describeIssue(issue: z.ZodIssue): string {
  const path = keyPath(issue.path);
  if (issue.code === z.ZodIssueCode.unrecognized_keys) {
    const where = path === '' ? '' : `${path}.`;
    return issue.keys.map((key) => `${where}${key}: unknown key`).join('; ');
  }
  if (issue.code === z.ZodIssueCode.invalid_type && issue.received === 'undefined') {
    return `${path}: is required`;
  }
  return `${path || '(root)'}: ${issue.message}`;
}

/**
 * `raw` with each string a number setting was given read as a number, where it is one whole
 * (`"8545"`): what `${PORT}` in a file gives, as environment variables are text. Undefined when no
 * such string is among the issues.
 */
function withLiteralsRead(raw: unknown, issues: z.ZodIssue[]): unknown {
  const copy = structuredClone(raw);
  let read = false;
  for (const issue of issues) {
    if (issue.code !== z.ZodIssueCode.invalid_type || issue.received !== 'string' || issue.path.length === 0) continue;
    const parent = issue.path.slice(0, -1).reduce<unknown>((node, key) => (node as Record<string | number, unknown>)[key], copy) as Record<string | number, unknown>;
    const key = issue.path.at(-1)!;
    const text = parent[key] as string;
    if (issue.expected !== 'number' || !NUMBER_LITERAL.test(text)) continue;
    parent[key] = Number(text);
    read = true;
  }
  return read ? copy : undefined;
}

const NUMBER_LITERAL = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;

/** Validate raw settings (from a file and flags); throws ConfigError naming each bad key. */
export function parseConfig(raw: unknown): Config {
  let result = configSchema.safeParse(raw);
  if (!result.success) {
    const read = withLiteralsRead(raw, result.error.issues);
    if (read !== undefined) result = configSchema.safeParse(read);
  }
  if (!result.success) {
    throw new ConfigError(result.error.issues.map(describeIssue).join('; '));
  }
  const parsed = result.data;
  return {
    ...parsed,
    balancer: parsed.balancer as Config['balancer'],
    upstreams: parsed.upstreams.map((upstream, index) => ({ ...upstream, name: upstream.name ?? `u${index}` })),
  };
}
