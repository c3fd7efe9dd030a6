/** Plain JSON-RPC over HTTP to a node or to evmux, and the canonical chain read from a node. */
import { toLog, type LogNote } from './stream-recorder.js';

/** One call; throws with the method's name on a JSON-RPC error. */
export async function rpc<T>(url: string, method: string, params: unknown[]): Promise<T> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) });
  const body = (await response.json()) as { result?: T; error?: { message: string } };
  if (body.error !== undefined) throw new Error(`${method}: ${body.error.message}`);
  return body.result as T;
}

export interface RpcAnswer {
  result?: unknown;
  error?: { code: number; message: string };
}

let nextId = 1;

/** One call, its answer as it came: a result or an error. */
export async function rpcAnswer(url: string, method: string, params: unknown[]): Promise<RpcAnswer> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: nextId++, method, params }) });
  const { result, error } = (await response.json()) as RpcAnswer;
  return error === undefined ? { result } : { error };
}

const hex = (n: bigint): string => `0x${n.toString(16)}`;

/** The node's block hash at each height from `from` to `to`. */
export async function canonicalHashes(url: string, from: bigint, to: bigint): Promise<Map<bigint, string>> {
  const canonical = new Map<bigint, string>();
  for (let n = from; n <= to; n++) canonical.set(n, (await rpc<{ hash: string }>(url, 'eth_getBlockByNumber', [hex(n), false])).hash);
  return canonical;
}

/** The node's logs of `filter` in blocks `from` to `to`. */
export async function canonicalLogs(url: string, filter: Record<string, unknown>, from: bigint, to: bigint): Promise<LogNote[]> {
  const logs = await rpc<Array<Record<string, unknown>>>(url, 'eth_getLogs', [{ ...filter, fromBlock: hex(from), toBlock: hex(to) }]);
  return logs.map((log) => toLog(log));
}
