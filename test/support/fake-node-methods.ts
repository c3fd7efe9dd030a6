/**
 * The fake node's built-in JSON-RPC methods: enough of geth's surface for viem, ethers and evmux
 * to believe they talk to a node. Tests override or add methods with FakeNode.handle().
 */
import type { WebSocket } from 'ws';
import { keccak256 } from 'viem';
import type { SyntheticChain } from './synthetic-chain.js';
import { toQuantity } from './synthetic-chain.js';
import type { Hex, LogCriteria } from './synthetic-logs.js';
import { parseLogFilter } from './synthetic-logs.js';

/** Thrown by a method (built-in or test-supplied) to answer with this JSON-RPC error. */
export class FakeRpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
    this.name = 'FakeRpcError';
  }
}

export type SubscriptionKind = 'newHeads' | 'logs' | 'newPendingTransactions' | 'syncing';

export interface FakeSubscription {
  readonly kind: SubscriptionKind;
  readonly criteria: LogCriteria;
}

/** One connected WebSocket client and the subscriptions it holds. */
export interface FakeClient {
  readonly ws: WebSocket;
  readonly subs: Map<string, FakeSubscription>;
}

/** `client` is undefined for HTTP requests. */
export type FakeMethod = (params: unknown[], client: FakeClient | undefined) => unknown;

/** What the methods need from the node that hosts them. */
export interface MethodHost {
  readonly chain: SyntheticChain;
  readonly chainId: number;
  subscribe(client: FakeClient, subscription: FakeSubscription): string;
  unsubscribe(client: FakeClient, id: string): boolean;
  pendingTransaction(hash: Hex): void;
}

const invalidParams = (message: string): FakeRpcError => new FakeRpcError(-32602, message);

function stringParam(params: unknown[], index: number, name: string): string {
  const value = params[index];
  if (typeof value !== 'string') throw invalidParams(`missing or invalid ${name}`);
  return value;
}

/** Geth answers subscription methods over HTTP with this error. */
function requireSocket(client: FakeClient | undefined): FakeClient {
  if (client === undefined) throw new FakeRpcError(-32601, 'notifications not supported');
  return client;
}

const SUBSCRIPTION_KINDS: readonly string[] = ['newHeads', 'logs', 'newPendingTransactions', 'syncing'];

export function defaultMethods(host: MethodHost): Map<string, FakeMethod> {
  const { chain } = host;
  const constant =
    (value: unknown): FakeMethod =>
    () =>
      value;

  const blockByNumber: FakeMethod = (params) => {
    const number = chain.resolveTag(stringParam(params, 0, 'block number'));
    if (number === undefined) throw invalidParams('invalid block number or tag');
    const header = chain.header(number);
    return header === undefined ? null : chain.blockJson(header);
  };

  const blockByHash: FakeMethod = (params) => {
    const found = chain.headerByHash(stringParam(params, 0, 'block hash'));
    return found === undefined ? null : chain.blockJson(found.header);
  };

  const getLogs: FakeMethod = (params) => {
    const filter = parseLogFilter(params[0]);
    if (typeof filter === 'string') throw invalidParams(filter);
    const logs = chain.getLogs(filter);
    if (typeof logs === 'string') throw new FakeRpcError(-32000, logs);
    return logs;
  };

  const subscribe: FakeMethod = (params, client) => {
    const socket = requireSocket(client);
    const kind = stringParam(params, 0, 'subscription type');
    if (!SUBSCRIPTION_KINDS.includes(kind)) throw invalidParams(`unsupported subscription type ${kind}`);
    let criteria: LogCriteria = {};
    if (kind === 'logs') {
      const filter = parseLogFilter(params[1]);
      if (typeof filter === 'string') throw invalidParams(filter);
      criteria = { address: filter.address ?? null, topics: filter.topics ?? null };
    }
    return host.subscribe(socket, { kind: kind as SubscriptionKind, criteria });
  };

  const unsubscribe: FakeMethod = (params, client) =>
    host.unsubscribe(requireSocket(client), stringParam(params, 0, 'subscription id'));

  const sendRawTransaction: FakeMethod = (params) => {
    const raw = stringParam(params, 0, 'raw transaction');
    if (!/^0x([0-9a-fA-F]{2})+$/.test(raw)) throw invalidParams('invalid raw transaction');
    const hash = keccak256(raw as Hex);
    host.pendingTransaction(hash);
    return hash;
  };

  return new Map<string, FakeMethod>([
    ['web3_clientVersion', constant('FakeNode/v0.1.0/evmux-test')],
    ['net_version', constant(String(host.chainId))],
    ['net_listening', constant(true)],
    ['net_peerCount', constant('0x1')],
    ['eth_chainId', constant(toQuantity(host.chainId))],
    ['eth_syncing', constant(false)],
    ['eth_blockNumber', () => toQuantity(chain.height)],
    ['eth_getBlockByNumber', blockByNumber],
    ['eth_getBlockByHash', blockByHash],
    ['eth_getLogs', getLogs],
    ['eth_subscribe', subscribe],
    ['eth_unsubscribe', unsubscribe],
    ['eth_getBalance', constant('0x0')],
    ['eth_getTransactionCount', constant('0x0')],
    ['eth_getCode', constant('0x')],
    ['eth_call', constant('0x')],
    ['eth_estimateGas', constant('0x5208')],
    ['eth_gasPrice', constant(toQuantity(1_000_000_000))],
    ['eth_maxPriorityFeePerGas', constant(toQuantity(1_000_000))],
    ['eth_getTransactionByHash', constant(null)],
    ['eth_getTransactionReceipt', constant(null)],
    ['eth_sendRawTransaction', sendRawTransaction],
  ]);
}
