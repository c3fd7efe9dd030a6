/**
 * Raw WebSocket clients that record every subscription notification as received, and checkers
 * for the stream guarantees (DESIGN.md "Stream guarantees") over what a client recorded compared
 * with the canonical chain read from a node at the end. Checkers return a list of problems rather
 * than throwing at the first one, so a failing test names everything that went wrong.
 */
import { WebSocket } from 'ws';

export interface HeadNote {
  number: bigint;
  hash: string;
  parentHash: string;
}

export interface LogNote {
  blockNumber: bigint;
  blockHash: string;
  logIndex: number;
  removed: boolean;
  transactionHash: string;
}

export interface Notification {
  /** the frame exactly as received */
  raw: string;
  result: Record<string, unknown>;
}

/** One raw ws client: subscribes, keeps every notification per subscription id, notes foreign ids. */
export class StreamClient {
  readonly ws: WebSocket;
  readonly label: string;
  /** notifications per subscription id, in arrival order */
  readonly received = new Map<string, Notification[]>();
  /** notifications for ids this client never got from a subscribe reply */
  readonly foreign: string[] = [];
  closeCode: number | undefined;
  readonly #replies = new Map<number, (reply: Record<string, unknown>) => void>();
  /** request ids of eth_subscribe calls not answered yet */
  readonly #subscribing = new Set<number>();
  readonly #ids = new Set<string>();
  #nextId = 1;

  private constructor(ws: WebSocket, label: string) {
    this.ws = ws;
    this.label = label;
    ws.on('message', (data) => this.#onFrame(String(data)));
    ws.on('close', (code) => {
      this.closeCode = code;
    });
    ws.on('error', () => {});
  }

  /** `localAddress`: the address to connect from (127.0.0.2, …), for a client of another IP. */
  static async open(url: string, label: string, localAddress?: string): Promise<StreamClient> {
    const ws = new WebSocket(url, { perMessageDeflate: false, ...(localAddress !== undefined && { localAddress }) });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    return new StreamClient(ws, label);
  }

  request(method: string, params: unknown[], timeoutMs = 5000): Promise<Record<string, unknown>> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#replies.delete(id);
        reject(new Error(`${this.label}: no reply to ${method} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#replies.set(id, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
      this.ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    });
  }

  /** One batch frame; resolves with the replies in request order (eth_subscribe ids are noted as by subscribe). */
  async batch(calls: Array<{ method: string; params: unknown[] }>, timeoutMs = 5000): Promise<Array<Record<string, unknown>>> {
    const requests = calls.map((call) => ({ jsonrpc: '2.0', id: this.#nextId++, ...call }));
    const replies = requests.map(
      (request) =>
        new Promise<Record<string, unknown>>((resolve, reject) => {
          if (request.method === 'eth_subscribe') this.#subscribing.add(request.id);
          const timer = setTimeout(() => {
            this.#replies.delete(request.id);
            reject(new Error(`${this.label}: no reply to ${request.method} in a batch within ${timeoutMs} ms`));
          }, timeoutMs);
          this.#replies.set(request.id, (reply) => {
            clearTimeout(timer);
            resolve(reply);
          });
        }),
    );
    this.ws.send(JSON.stringify(requests));
    return Promise.all(replies);
  }

  /** eth_subscribe; resolves with the subscription id (throws on an error reply). */
  async subscribe(params: unknown[]): Promise<string> {
    this.#subscribing.add(this.#nextId);
    const reply = await this.request('eth_subscribe', params);
    const id = reply['result'];
    if (typeof id !== 'string') throw new Error(`${this.label}: eth_subscribe ${JSON.stringify(params)} failed: ${JSON.stringify(reply)}`);
    return id;
  }

  /** Wait for the first notification on `id` (a newHeads subscription's greeting) and return it. */
  async first(id: string, timeoutMs = 5000): Promise<Notification> {
    await waitUntil(`${this.label}: first notification on ${id}`, () => this.notifications(id).length > 0, timeoutMs, 5);
    return this.notifications(id)[0]!;
  }

  notifications(id: string): Notification[] {
    return this.received.get(id) ?? [];
  }

  heads(id: string): HeadNote[] {
    return this.notifications(id).map((n) => toHead(n.result));
  }

  logs(id: string): LogNote[] {
    return this.notifications(id).map((n) => toLog(n.result));
  }

  /** The highest head number received on `id`, or -1. */
  tip(id: string): bigint {
    let best = -1n;
    for (const head of this.heads(id)) if (head.number > best) best = head.number;
    return best;
  }

  close(): void {
    this.ws.terminate();
  }

  #onFrame(text: string): void {
    const parsed = JSON.parse(text) as Record<string, unknown> | Array<Record<string, unknown>>;
    if (Array.isArray(parsed)) {
      for (const reply of parsed) this.#onReply(reply);
      return;
    }
    const message = parsed;
    if (typeof message['id'] === 'number') {
      this.#onReply(message);
      return;
    }
    if (message['method'] !== 'eth_subscription') return;
    const params = message['params'] as { subscription: string; result: Record<string, unknown> };
    const list = this.received.get(params.subscription);
    if (list === undefined || !this.#ids.has(params.subscription)) {
      this.foreign.push(params.subscription);
      return;
    }
    list.push({ raw: text, result: params.result });
  }

  #onReply(message: Record<string, unknown>): void {
    if (typeof message['id'] === 'number') {
      // A subscription's id is known from its reply on: the greeting head can come in the same read.
      const result = message['result'];
      if (this.#subscribing.delete(message['id']) && typeof result === 'string') {
        this.#ids.add(result);
        if (!this.received.has(result)) this.received.set(result, []);
      }
      const settle = this.#replies.get(message['id']);
      this.#replies.delete(message['id']);
      settle?.(message);
    }
  }
}

export function toHead(result: Record<string, unknown>): HeadNote {
  return { number: BigInt(result['number'] as string), hash: String(result['hash']), parentHash: String(result['parentHash']) };
}

export function toLog(result: Record<string, unknown>): LogNote {
  return {
    blockNumber: BigInt(result['blockNumber'] as string),
    blockHash: String(result['blockHash']),
    logIndex: Number(result['logIndex']),
    removed: result['removed'] === true,
    transactionHash: String(result['transactionHash']),
  };
}

/**
 * Where a newHeads subscription's first notification (the greeting: the head current when it
 * started) must lie: between the node's head read right before the subscribe and right after the
 * greeting arrived. Both are the same height when nothing was mined meanwhile.
 */
export interface GreetingWindow {
  low: bigint;
  high: bigint;
}

/**
 * newHeads guarantees: the first head is the current head (its height within `greeting`, and the
 * canonical block there unless a reorg replaced it later in the stream); every later one names a
 * delivered head as parent, no hash twice, no height between the first and the highest skipped,
 * and every canonical block from the first height to `upTo` delivered. The one head that may name
 * a parent never delivered is the first of a reorg older than the stream: at or below the first
 * head's height (README, "Stream guarantees"). `canonical` maps height to hash. `greeting: 'unchecked'` is for a
 * client library's view that may have dropped the greeting (see test/integration/clients-web3.test.ts).
 */
export function headProblems(
  heads: readonly HeadNote[],
  canonical: ReadonlyMap<bigint, string>,
  upTo: bigint,
  greeting: GreetingWindow | 'unchecked',
): string[] {
  const problems: string[] = [];
  const first = heads[0];
  if (first === undefined) return ['no heads delivered'];
  if (greeting !== 'unchecked') {
    if (first.number < greeting.low || first.number > greeting.high) {
      problems.push(`first head ${first.number} is not the head at subscribe time (${greeting.low}..${greeting.high})`);
    }
    const hash = canonical.get(first.number);
    if (hash === undefined) problems.push(`first head ${first.number}: no canonical hash known at that height`);
    else if (hash !== first.hash && !heads.some((head) => head.hash === hash)) problems.push(`first head ${first.number} ${first.hash} is not the canonical block ${hash}`);
  }
  const seen = new Set<string>();
  for (const [i, head] of heads.entries()) {
    if (seen.has(head.hash)) problems.push(`head ${head.number} ${head.hash} delivered twice`);
    if (i > 0 && !seen.has(head.parentHash) && head.number > first.number) problems.push(`head ${head.number} ${head.hash}: parent ${head.parentHash} was not delivered before it`);
    seen.add(head.hash);
  }
  const numbers = new Set(heads.map((head) => head.number));
  for (let n = first.number; n <= upTo; n++) {
    if (!numbers.has(n)) problems.push(`height ${n} never delivered`);
    const hash = canonical.get(n);
    if (hash !== undefined && !seen.has(hash)) problems.push(`canonical block ${n} ${hash} never delivered`);
  }
  return problems;
}

/**
 * logs guarantees, for logs of blocks in [from, to]: every canonical log exactly once with
 * removed:false and never removed; every delivered log of a non-canonical block removed:true once
 * after it was delivered; order by block then log index among logs still live.
 *
 * `removalsSeen: false` is for clients that swallow removed:true logs (ethers routes them to
 * per-log "orphan" events): logs of orphaned blocks then count as removed when a lower log comes.
 */
export function logProblems(
  logs: readonly LogNote[],
  canonicalLogs: readonly LogNote[],
  canonicalHashes: ReadonlySet<string>,
  from: bigint,
  to: bigint,
  { removalsSeen = true }: { removalsSeen?: boolean } = {},
): string[] {
  const problems: string[] = [];
  const key = (log: LogNote): string => `${log.blockHash}#${log.logIndex}`;
  const added = new Map<string, number>();
  const removed = new Map<string, number>();
  // live logs in delivery order; a new live log must sort after every one still live
  const live: LogNote[] = [];
  for (const log of logs) {
    const k = key(log);
    if (log.removed) {
      removed.set(k, (removed.get(k) ?? 0) + 1);
      const at = live.findIndex((entry) => key(entry) === k);
      if (at < 0) problems.push(`removed:true for ${k} (block ${log.blockNumber}) that was not live`);
      else live.splice(at, 1);
      continue;
    }
    added.set(k, (added.get(k) ?? 0) + 1);
    if (!removalsSeen) {
      while (live.length > 0 && !canonicalHashes.has(live.at(-1)!.blockHash) && live.at(-1)!.blockNumber >= log.blockNumber) live.pop();
    }
    const last = live.at(-1);
    if (last !== undefined && (log.blockNumber < last.blockNumber || (log.blockNumber === last.blockNumber && log.logIndex <= last.logIndex))) {
      problems.push(`log ${k} (block ${log.blockNumber} index ${log.logIndex}) delivered after live log of block ${last.blockNumber} index ${last.logIndex}`);
    }
    live.push(log);
  }
  for (const log of canonicalLogs) {
    if (log.blockNumber < from || log.blockNumber > to) continue;
    const k = key(log);
    const count = added.get(k) ?? 0;
    if (count !== 1) problems.push(`canonical log ${k} (block ${log.blockNumber}) delivered ${count} times`);
    if (removed.has(k)) problems.push(`canonical log ${k} (block ${log.blockNumber}) delivered as removed`);
  }
  for (const log of logs) {
    if (!removalsSeen || log.removed || canonicalHashes.has(log.blockHash) || log.blockNumber > to) continue;
    const k = key(log);
    if ((removed.get(k) ?? 0) !== (added.get(k) ?? 0)) {
      problems.push(`log ${k} of orphaned block ${log.blockNumber}: ${added.get(k) ?? 0} times live, ${removed.get(k) ?? 0} times removed`);
    }
  }
  return [...new Set(problems)];
}

export async function waitUntil(what: string, condition: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, stepMs));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface StatusShape {
  upstreams: Array<{ name: string; subscriptions: { kinds: Record<string, { clients: number }> } | null }>;
}

/** Client subscriptions per upstream and kind, from /status. */
export function subscriptionsByUpstream(statusBody: string): Map<string, Map<string, number>> {
  const status = JSON.parse(statusBody) as StatusShape;
  const out = new Map<string, Map<string, number>>();
  for (const upstream of status.upstreams) {
    const kinds = new Map<string, number>();
    for (const [kind, { clients }] of Object.entries(upstream.subscriptions?.kinds ?? {})) kinds.set(kind, clients);
    out.set(upstream.name, kinds);
  }
  return out;
}

/** The upstream holding at least `min` client subscriptions of `kind` (the one clients are pinned to). */
export function pinnedUpstream(statusBody: string, kind = 'newHeads', min = 1): string | undefined {
  for (const [name, kinds] of subscriptionsByUpstream(statusBody)) if ((kinds.get(kind) ?? 0) >= min) return name;
  return undefined;
}
