/**
 * Shared fixture for the real-client tests (viem, ethers, web3.js): a 3-node lockstep anvil devnet
 * that only mines when told to, evmux in front of it, and helpers that know what the chain must
 * look like so each client's view through evmux can be checked against node0 directly.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { keccak256, type Hex } from 'viem';
import { LockstepDevnet, type DevnetNode } from '../../src/devnet/lockstep-devnet.js';
import { startGateway, type TestGateway } from './gateway.js';

/** Every subscription kind evmux counts in `evmux_client_subscriptions{kind}`. */
const SUBSCRIPTION_KINDS = ['newHeads', 'logs', 'newPendingTransactions', 'syncing'] as const;

/** What identifies one log on a chain, as a comparable string. */
export type LogKey = string;

/**
 * Works for viem and web3 logs (`logIndex`) and ethers logs (`index`). A log flagged `removed`
 * gets a distinct key, so it never passes for the live log it retracts.
 */
export function logKey(log: { blockHash?: unknown; transactionHash?: unknown; logIndex?: unknown; index?: unknown; removed?: unknown }): LogKey {
  const index = Number(log.logIndex ?? log.index);
  assert.ok(Number.isInteger(index), `log without an index: ${JSON.stringify(log, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`);
  return `${String(log.blockHash)}#${index}#${String(log.transactionHash)}${log.removed === true ? '#removed' : ''}`;
}

interface RpcLog {
  blockHash: Hex;
  blockNumber: Hex;
  logIndex: Hex;
  transactionHash: Hex;
  removed?: boolean;
}

export interface ClientFixture {
  readonly devnet: LockstepDevnet;
  readonly evmux: TestGateway;
  /** node0: the reference every result through evmux is compared with. */
  readonly direct: DevnetNode;
  /** Mine `blocks` blocks, each with `emitsPerBlock` extra Ping events besides the devnet's own traffic. */
  mineWithEmits(blocks: number, emitsPerBlock?: number): Promise<void>;
  /**
   * Queue a signed transaction the client is about to send through evmux so every node mines it.
   * evmux hands the transaction to one node only; without the devnet feeding it to the others in
   * the same order, that node would mine a different block and break the lockstep.
   */
  queueClientTransaction(raw: Hex): Hex;
  /**
   * What evmux says about itself, for failure messages: its log lines (warn and up by default;
   * EVMUX_TEST_LOG_LEVEL=info for more) and `/status`.
   */
  diagnostics(): Promise<{ logs: string[]; status: unknown }>;
  /** Sum of `evmux_client_subscriptions` over every kind. */
  clientSubscriptions(): Promise<number>;
  /** Emitter logs in blocks [from, to], read from node0 with a bare request: what a logs subscription must deliver. */
  emitterLogs(fromBlock: bigint, toBlock: bigint): Promise<LogKey[]>;
  /**
   * With one client subscribed to pending transactions (the hashes it reports go to `seen`), mine
   * two blocks and check that it reported each of their transactions once: every node sees a
   * block's transactions in its pool before it mines them.
   */
  expectPendingReported(seen: readonly string[], who: string): Promise<void>;
  close(): Promise<void>;
}

/** Mine `blocks` blocks on `devnet`, each with `emitsPerBlock` extra Ping events besides its own traffic. */
export async function mineWithEmits(devnet: LockstepDevnet, blocks: number, emitsPerBlock = 1): Promise<void> {
  for (let k = 0; k < blocks; k++) {
    for (let e = 0; e < emitsPerBlock; e++) devnet.queueEmit();
    await devnet.mine(1);
  }
}

/** Devnet with 3 nodes mining only on `mine()`, evmux in front, both ready. */
export async function startClientFixture(): Promise<ClientFixture> {
  const devnet = await LockstepDevnet.start({ nodes: 3, blockTimeMs: 0 });
  let evmux: TestGateway;
  try {
    evmux = await startGateway(
      devnet.nodes.map((node) => node.wsUrl),
      {},
      { logLevel: process.env.EVMUX_TEST_LOG_LEVEL ?? 'warn' },
    );
  } catch (error) {
    await devnet.close();
    throw error;
  }
  const direct = devnet.nodes[0];
  assert.ok(direct !== undefined);
  let nextId = 1;
  /** One JSON-RPC call straight to node0; fails the test when node0 answers without a result. */
  const callNode0 = async <T>(method: string, params: unknown[]): Promise<T> => {
    const response = await fetch(direct.httpUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: nextId++, method, params }),
    });
    const body = (await response.json()) as { result?: T | null; error?: unknown };
    assert.ok(body.result !== undefined && body.result !== null, `${method} on node0 gave no result: ${JSON.stringify(body.error ?? body.result)}`);
    return body.result;
  };
  const fixture: ClientFixture = {
    devnet,
    evmux,
    direct,
    mineWithEmits: (blocks, emitsPerBlock) => mineWithEmits(devnet, blocks, emitsPerBlock),
    queueClientTransaction(raw) {
      devnet.queueRawTransaction(raw);
      return keccak256(raw);
    },
    async diagnostics() {
      const { body } = await evmux.get('/status');
      return { logs: evmux.logs.map((line) => JSON.stringify(line)), status: JSON.parse(body) as unknown };
    },
    async clientSubscriptions() {
      const values = await Promise.all(SUBSCRIPTION_KINDS.map((kind) => evmux.metric('evmux_client_subscriptions', { kind })));
      return values.reduce<number>((sum, value) => sum + (value ?? 0), 0);
    },
    async emitterLogs(fromBlock, toBlock) {
      const filter = { address: devnet.emitterAddress, topics: [devnet.emitterTopic], fromBlock: toQuantity(fromBlock), toBlock: toQuantity(toBlock) };
      return (await callNode0<RpcLog[]>('eth_getLogs', [filter])).map(logKey);
    },
    async expectPendingReported(seen, who) {
      await waitFor(async () => (await fixture.clientSubscriptions()) === 1, `${who}: the client subscription in evmux`);
      const startHead = BigInt(devnet.blockNumber);
      await fixture.mineWithEmits(2, 2);
      const mined: Hex[] = [];
      for (let number = startHead + 1n; number <= BigInt(devnet.blockNumber); number++) {
        const block = await callNode0<{ transactions: Hex[] }>('eth_getBlockByNumber', [toQuantity(number), false]);
        mined.push(...block.transactions);
      }
      assert.ok(mined.length > 0, `${who}: the test mined no transactions`);
      const reported = (hash: Hex): number => seen.filter((h) => h.toLowerCase() === hash.toLowerCase()).length;
      await waitFor(() => mined.every((hash) => reported(hash) > 0), `${who}: every mined transaction reported`, { state: () => ({ seen, mined }) });
      await sleep(200); // anything reported twice would show up now
      for (const hash of mined) assert.equal(reported(hash), 1, `${who}: ${hash} reported once`);
    },
    async close() {
      await evmux.close();
      await devnet.close();
    },
  };
  return fixture;
}

function toQuantity(value: bigint): Hex {
  return `0x${value.toString(16)}`;
}

/** Poll `check` until it holds; fail with `what` (and `state()`, what was seen) after `timeoutMs`. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  what: string,
  { timeoutMs = 5000, state }: { timeoutMs?: number; state?: () => unknown } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) {
      const seen = state === undefined ? '' : `; seen: ${JSON.stringify(await state(), (_key, value: unknown) => (typeof value === 'bigint' ? `${value}n` : value))}`;
      assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}${seen}`);
    }
    await sleep(20);
  }
}

/** `from, from + 1, ..., to` as bigints. */
export function blockRange(from: bigint, to: bigint): bigint[] {
  const out: bigint[] = [];
  for (let n = from; n <= to; n++) out.push(n);
  return out;
}

/** JSON-ish form for deepEqual across libraries' result types (bigint kept as bigint). */
export function plain(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === 'object') {
    const withJson = value as { toJSON?: () => unknown };
    if (typeof withJson.toJSON === 'function') return plain(withJson.toJSON());
    return Object.fromEntries(Object.entries(value).map(([key, entry]) => [key, plain(entry)]));
  }
  return value;
}

/** The shape of a WebSocket that the tap can watch: `ws` and WHATWG sockets both fit. */
export interface TappableSocket {
  send(data: never, ...rest: never[]): unknown;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
}

interface Frame {
  id?: unknown;
  method?: unknown;
  params?: unknown;
  result?: unknown;
  error?: unknown;
}

/**
 * Records the JSON-RPC frames a client library sends and receives on its own socket, so a test
 * can see what the library hides, e.g. the result evmux gave to the library's `eth_unsubscribe`.
 */
export class SocketTap {
  readonly #sent = new Map<string, Frame>();
  readonly #received: Frame[] = [];
  #batchesSent = 0;

  constructor(socket: TappableSocket) {
    const target = socket as unknown as { send: (data: unknown, ...rest: unknown[]) => unknown };
    const send = target.send.bind(target);
    target.send = (data: unknown, ...rest: unknown[]) => {
      if (textOf(data).trimStart().startsWith('[')) this.#batchesSent += 1;
      for (const frame of parseFrames(data)) {
        if (frame.id !== undefined && frame.id !== null) this.#sent.set(JSON.stringify(frame.id), frame);
      }
      return send(data, ...rest);
    };
    socket.addEventListener('message', (event) => {
      this.#received.push(...parseFrames(event.data));
    });
  }

  /** Results of every answered request for `method`, in the order the answers arrived. */
  results(method: string): unknown[] {
    return this.#received
      .filter((frame) => frame.id !== undefined && this.#sent.get(JSON.stringify(frame.id))?.method === method)
      .map((frame) => (frame.error !== undefined ? { error: frame.error } : frame.result));
  }

  /** The `result` of every eth_subscription notification for `subscription`, in arrival order. */
  notifications(subscription: unknown): unknown[] {
    return this.#received
      .filter((frame) => frame.method === 'eth_subscription' && (frame.params as { subscription?: unknown } | undefined)?.subscription === subscription)
      .map((frame) => (frame.params as { result?: unknown }).result);
  }

  /** How many frames carrying a JSON-RPC batch (an array) the library sent. */
  get batchesSent(): number {
    return this.#batchesSent;
  }
}

function textOf(data: unknown): string {
  return typeof data === 'string' ? data : Buffer.isBuffer(data) ? data.toString('utf8') : String(data);
}

function parseFrames(data: unknown): Frame[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(textOf(data));
  } catch {
    return [];
  }
  const list = Array.isArray(parsed) ? parsed : [parsed];
  return list.filter((item): item is Frame => item !== null && typeof item === 'object');
}

/**
 * Check what a block subscription delivered: the head current when it started (`startHead`, evmux's
 * first newHeads notification), then every block mined after it, exactly once, in order.
 */
export function assertBlockSequence(received: readonly bigint[], startHead: bigint, endHead: bigint, who: string): void {
  assert.deepEqual(received, blockRange(startHead, endHead), `${who}: the head at subscribe time, then every block number exactly once, in order`);
}

/** Check what a logs subscription delivered: exactly the emitter logs of the mined blocks, in chain order. */
export function assertLogSequence(received: readonly LogKey[], expected: readonly LogKey[], who: string): void {
  assert.ok(expected.length > 0, `${who}: the test mined no emitter logs`);
  assert.deepEqual(received, expected, `${who}: every emitted event exactly once, in order`);
}
