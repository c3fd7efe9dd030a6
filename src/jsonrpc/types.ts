/** JSON-RPC 2.0 shapes as evmux sees them. */

export type JsonRpcId = string | number | null;

/** Longest method name evmux accepts; longer ones are invalid requests. */
export const MAX_METHOD_LENGTH = 128;

export interface JsonRpcRequest {
  jsonrpc: '2.0';
  id?: JsonRpcId;
  method: string;
  params?: unknown[] | Record<string, unknown>;
}
