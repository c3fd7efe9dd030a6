import { Agent, request } from 'node:http';

/** A JSON-RPC error returned by the node (as opposed to a transport failure). */
export class AnvilRpcError extends Error {
  override readonly name = 'AnvilRpcError';
  readonly code: number;
  readonly data: unknown;
  constructor(method: string, code: number, message: string, data?: unknown) {
    super(`${method}: ${message} (code ${code})`);
    this.code = code;
    this.data = data;
  }
}

interface RpcReply {
  result?: unknown;
  error?: { code?: unknown; message?: unknown; data?: unknown };
}

/**
 * Minimal JSON-RPC over HTTP client for one anvil node.
 *
 * It owns a keep-alive agent so that replaying a long history does not open a socket per call,
 * and so that `close()` (on kill/restart) leaves no pooled socket pointing at a dead process.
 * Requests are sequential by design of the callers: anvil runs a JSON-RPC batch concurrently,
 * so batching would reorder transactions inside a block.
 */
export class AnvilRpc {
  readonly url: string;
  readonly #host: string;
  readonly #port: number;
  readonly #timeoutMs: number;
  #agent: Agent;
  #nextId = 1;

  /** @param timeoutMs per request; @default 10_000 */
  constructor(host: string, port: number, timeoutMs = 10_000) {
    this.url = `http://${host}:${port}`;
    this.#host = host;
    this.#port = port;
    this.#timeoutMs = timeoutMs;
    this.#agent = new Agent({ keepAlive: true, maxSockets: 4 });
  }

  call<T = unknown>(method: string, params: readonly unknown[] = []): Promise<T> {
    const body = JSON.stringify({ jsonrpc: '2.0', id: this.#nextId++, method, params });
    return new Promise<T>((resolve, reject) => {
      const req = request(
        {
          host: this.#host,
          port: this.#port,
          method: 'POST',
          path: '/',
          agent: this.#agent,
          timeout: this.#timeoutMs,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            try {
              resolve(parseReply<T>(method, Buffer.concat(chunks).toString('utf8')));
            } catch (error) {
              reject(error instanceof Error ? error : new Error(String(error)));
            }
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method}: timed out after ${this.#timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  /** Drop pooled sockets; later calls open fresh ones (used after the process was replaced). */
  reset(): void {
    this.#agent.destroy();
    this.#agent = new Agent({ keepAlive: true, maxSockets: 4 });
  }

  close(): void {
    this.#agent.destroy();
  }
}

function parseReply<T>(method: string, text: string): T {
  const reply = JSON.parse(text) as RpcReply;
  if (reply.error !== undefined) {
    const { code, message, data } = reply.error;
    throw new AnvilRpcError(
      method,
      typeof code === 'number' ? code : -32603,
      typeof message === 'string' ? message : 'unknown error',
      data,
    );
  }
  return reply.result as T;
}
