/** JSON-RPC 2.0 shapes as evmux sees them. */

export type JsonRpcId = string | number | null;

export interface JsonRpcRequest {
  jsonrpc: '2.0';
  id?: JsonRpcId;
  method: string;
  params?: unknown[] | Record<string, unknown>;
}
