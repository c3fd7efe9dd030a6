// A fast fake EVM node for benchmarks: uWebSockets.js, JSON-RPC over WebSocket and HTTP POST on
// `/`, responses pre-serialized so only the id is spliced in, newHeads emitted at a set rate.
//
//   node dist/bench/fake-upstream.js [--port 0] [--interval-ms 250] [--genesis-ms T] [--seed s]
//                                    [--block-bytes 16384] [--max-seconds 900] [--turns COUNT:INDEX:MS]
//
// Prints one line {"event":"listening","port":N,...} when ready. GET /stats returns JSON with the
// live upstream subscription counts. Heads carry their send time in `extraData` (see chain.ts).
import uWS from '@trufflesuite/uws-js-unofficial';
import type { HttpResponse, WebSocket } from '@trufflesuite/uws-js-unofficial';
import { FakeChain, defaultGenesisMs, monoMicros, notification, parseTurns, startTicker, toHex } from './chain.js';
import { firstStringParam, rawValue, stringValue } from './json-scan.js';
import { num } from './process-util.js';
import { SERVER_OPTIONS, listenUws } from './tool-server.js';
import { toolArgs } from './tool-args.js';

interface ConnData {
  subs?: Map<string, string>;
}

interface Head {
  number: number;
  stampUs: number;
  header: string;
  blockResult?: Buffer;
  fullResult?: Buffer;
}

const args = toolArgs(import.meta.url, {
  ...SERVER_OPTIONS,
  'interval-ms': { type: 'string' },
  'genesis-ms': { type: 'string' },
  seed: { type: 'string', default: 'evmux-bench' },
  'block-bytes': { type: 'string' },
  'full-block-bytes': { type: 'string' },
  'chain-id': { type: 'string' },
  turns: { type: 'string' },
});

const intervalMs = num(args['interval-ms'], 250, 'interval-ms');
const chain = new FakeChain({
  seed: args.seed,
  genesisMs: num(args['genesis-ms'], defaultGenesisMs(intervalMs), 'genesis-ms'),
  intervalMs,
  blockBytes: num(args['block-bytes'], 16_384, 'block-bytes'),
  ...(args.turns !== undefined && { turns: parseTurns(args.turns) }),
});

// eth_getBlockByNumber(n, true) answers a much larger block: benchmarks use it to push a stalled
// client past its gateway's send buffer cap with few calls.
const fullBlockBytes = num(args['full-block-bytes'], 256 * 1024, 'full-block-bytes');

const ID_PREFIX = Buffer.from('{"jsonrpc":"2.0","id":');
const resultTail = (json: string): Buffer => Buffer.from(`,"result":${json}}`);
const errorTail = (code: number, message: string): Buffer =>
  Buffer.from(`,"error":{"code":${code},"message":${JSON.stringify(message)}}}`);

/** Results that never change, pre-serialized once. */
const FIXED = new Map<string, Buffer>([
  ['eth_chainId', resultTail(`"${toHex(num(args['chain-id'], 1337, 'chain-id'))}"`)],
  ['net_version', resultTail(`"${num(args['chain-id'], 1337, 'chain-id')}"`)],
  ['web3_clientVersion', resultTail('"evmux-bench-fake-upstream/1.0"')],
  ['net_listening', resultTail('true')],
  ['eth_syncing', resultTail('false')],
  ['eth_gasPrice', resultTail('"0x3b9aca00"')],
  ['eth_maxPriorityFeePerGas', resultTail('"0x3b9aca00"')],
  ['eth_getLogs', resultTail('[]')],
  ['eth_getBalance', resultTail('"0x0"')],
  ['eth_getTransactionCount', resultTail('"0x0"')],
  ['eth_getCode', resultTail('"0x"')],
  ['eth_call', resultTail('"0x"')],
  ['eth_estimateGas', resultTail('"0x5208"')],
]);
const NULL_RESULT = resultTail('null');
const TRUE_RESULT = resultTail('true');
const FALSE_RESULT = resultTail('false');
const NOT_FOUND = errorTail(-32601, 'method not supported by the fake upstream');
const INVALID = errorTail(-32600, 'invalid request');
const WS_ONLY = errorTail(-32601, 'subscriptions need a WebSocket');

// Recent heads, bounded; replay lookups by number or hash are served from here or rebuilt.
const RECENT = 4096;
const heads = new Map<number, Head>();
const byHash = new Map<string, number>();
let head = startHead();
let headNumberTail = resultTail(`"${toHex(head.number)}"`);

const subscribers = new Set<WebSocket<ConnData>>();
let subCounter = 0;
const unsupported = new Map<string, number>();
const stats = { requests: 0, connections: 0, notifications: 0, newHeads: 0, logs: 0, other: 0 };

function startHead(): Head {
  const n = chain.headAt(Date.now());
  return remember({ number: n, stampUs: scheduledStamp(n), header: '' });
}

/** The monotonic-clock time at which block n was due (for blocks this process never sent). */
function scheduledStamp(n: number): number {
  return monoMicros() - (Date.now() - chain.dueMs(n)) * 1000;
}

function remember(h: Head): Head {
  heads.set(h.number, h);
  byHash.set(chain.hashOf(h.number), h.number);
  const old = h.number - RECENT;
  if (heads.delete(old)) byHash.delete(chain.hashOf(old));
  return h;
}

function blockTail(n: number, full = false): Buffer {
  if (n > head.number || n < 0) return NULL_RESULT;
  const h = heads.get(n) ?? remember({ number: n, stampUs: scheduledStamp(n), header: '' });
  if (full) return (h.fullResult ??= resultTail(chain.block(n, h.stampUs, fullBlockBytes)));
  return (h.blockResult ??= resultTail(chain.block(n, h.stampUs)));
}

function tailFor(buf: Buffer, conn: ConnData | undefined, ws: WebSocket<ConnData> | undefined): Buffer {
  const method = stringValue(buf, 'method');
  if (method === undefined) return INVALID;
  const fixed = FIXED.get(method);
  if (fixed !== undefined) return fixed;
  switch (method) {
    case 'eth_blockNumber':
      return headNumberTail;
    case 'eth_getBlockByNumber': {
      const p = firstStringParam(buf);
      if (p === undefined) return INVALID;
      const full = buf.indexOf('true', buf.indexOf('"params"')) >= 0;
      if (p.startsWith('0x')) return blockTail(Number.parseInt(p.slice(2), 16), full);
      return blockTail(p === 'earliest' ? 0 : head.number, full);
    }
    case 'eth_getBlockByHash': {
      const n = byHash.get(firstStringParam(buf) ?? '');
      return n === undefined ? NULL_RESULT : blockTail(n);
    }
    case 'eth_subscribe': {
      if (conn === undefined || ws === undefined) return WS_ONLY;
      const kind = firstStringParam(buf) ?? 'other';
      const id = `0x${(++subCounter).toString(16).padStart(32, '0')}`;
      conn.subs ??= new Map();
      conn.subs.set(id, kind);
      countSub(kind, 1);
      subscribers.add(ws);
      return resultTail(`"${id}"`);
    }
    case 'eth_unsubscribe': {
      const id = firstStringParam(buf) ?? '';
      const kind = conn?.subs?.get(id);
      if (kind === undefined) return FALSE_RESULT;
      conn?.subs?.delete(id);
      countSub(kind, -1);
      return TRUE_RESULT;
    }
    default:
      // Visible in GET /stats, so a gateway's unexpected upstream calls are easy to spot.
      if (unsupported.size < 50 || unsupported.has(method)) unsupported.set(method, (unsupported.get(method) ?? 0) + 1);
      return NOT_FOUND;
  }
}

function countSub(kind: string, delta: number): void {
  if (kind === 'newHeads') stats.newHeads += delta;
  else if (kind === 'logs') stats.logs += delta;
  else stats.other += delta;
}

/** Answer one request or a batch; only the id is spliced into pre-serialized bytes. */
function answer(buf: Buffer, conn?: ConnData, ws?: WebSocket<ConnData>): Buffer {
  let i = 0;
  while (buf[i] === 0x20 || buf[i] === 0x0a || buf[i] === 0x0d || buf[i] === 0x09) i++;
  if (buf[i] === 0x5b) return answerBatch(buf, conn, ws);
  stats.requests++;
  const id = Buffer.from(rawValue(buf, 'id') ?? 'null', 'latin1');
  return Buffer.concat([ID_PREFIX, id, tailFor(buf, conn, ws)]);
}

function answerBatch(buf: Buffer, conn?: ConnData, ws?: WebSocket<ConnData>): Buffer {
  let items: unknown;
  try {
    items = JSON.parse(buf.toString('utf8'));
  } catch {
    return Buffer.concat([ID_PREFIX, Buffer.from('null'), errorTail(-32700, 'parse error')]);
  }
  if (!Array.isArray(items)) return Buffer.concat([ID_PREFIX, Buffer.from('null'), INVALID]);
  const parts = items.map((item) => answer(Buffer.from(JSON.stringify(item)), conn, ws));
  return Buffer.concat([Buffer.from('['), ...parts.flatMap((p, k) => (k === 0 ? [p] : [Buffer.from(','), p])), Buffer.from(']')]);
}

function emitHead(n: number): void {
  const stampUs = monoMicros();
  const header = chain.header(n, stampUs);
  head = remember({ number: n, stampUs, header });
  headNumberTail = resultTail(`"${toHex(n)}"`);
  for (const ws of subscribers) {
    const subs = ws.getUserData().subs;
    if (subs === undefined) continue;
    for (const [id, kind] of subs) {
      if (kind !== 'newHeads') continue;
      ws.send(notification(id, header), false);
      stats.notifications++;
    }
  }
}

function readBody(res: HttpResponse, done: (body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  res.onData((ab, isLast) => {
    const view = Buffer.from(ab);
    if (!isLast) {
      chunks.push(Buffer.from(view)); // copy: uWS neuters the ArrayBuffer after this call
      return;
    }
    done(chunks.length === 0 ? view : Buffer.concat([...chunks, view]));
  });
}

const app = uWS.App();
app.ws<ConnData>('/*', {
  compression: uWS.DISABLED,
  maxPayloadLength: 16 * 1024 * 1024,
  maxBackpressure: 64 * 1024 * 1024,
  idleTimeout: 0,
  open: () => {
    stats.connections++;
  },
  message: (ws, message) => {
    ws.send(answer(Buffer.from(message), ws.getUserData(), ws), false);
  },
  close: (ws) => {
    stats.connections--;
    subscribers.delete(ws);
    for (const kind of ws.getUserData().subs?.values() ?? []) countSub(kind, -1);
  },
});
app.post('/*', (res) => {
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });
  readBody(res, (body) => {
    const out = answer(body);
    if (aborted) return;
    res.cork(() => {
      res.writeHeader('content-type', 'application/json').end(out);
    });
  });
});
app.get('/stats', (res) => {
  const subs = { newHeads: stats.newHeads, logs: stats.logs, other: stats.other };
  const body = {
    head: head.number,
    pid: process.pid,
    connections: stats.connections,
    requests: stats.requests,
    notifications: stats.notifications,
    subscriptions: subs,
    total: subs.newHeads + subs.logs + subs.other,
    unsupported: Object.fromEntries(unsupported),
  };
  res.writeHeader('content-type', 'application/json').end(JSON.stringify(body));
});
app.get('/*', (res) => {
  res.writeStatus('404 Not Found').end('not found');
});

listenUws(app, 'fake-upstream', args, () => {
  const ticker = startTicker(chain, emitHead);
  return { stop: () => ticker.close(), extra: { head: head.number, genesisMs: chain.options.genesisMs, intervalMs } };
});
