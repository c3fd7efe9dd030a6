/**
 * A WebSocket relay on 127.0.0.1 in front of one node that refuses some eth_getLogs calls itself,
 * as a provider capping their ranges does (QuickNode's free plans: 5 blocks), and passes every
 * other frame through untouched. A connection whose node goes away is closed.
 */
import { WebSocketServer } from 'ws';
import { pipeToNode } from './relay-pipe.js';

/** An eth_getLogs filter with numeric bounds: the blocks it spans. */
export interface LogsRange {
  from: bigint;
  to: bigint;
}

/** The error message to answer an eth_getLogs over `range` with, or undefined to pass it on. */
export type LogsRefusal = (range: LogsRange) => string | undefined;

export class LogsRangeRelay {
  readonly url: string;
  readonly #server: WebSocketServer;
  /** eth_getLogs calls the relay answered with a refusal */
  refused = 0;

  private constructor(server: WebSocketServer, port: number) {
    this.#server = server;
    this.url = `ws://127.0.0.1:${port}`;
  }

  static async start(targetUrl: string, refusal: LogsRefusal): Promise<LogsRangeRelay> {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => server.once('listening', resolve));
    const relay = new LogsRangeRelay(server, (server.address() as { port: number }).port);
    server.on('connection', (client) => {
      const { toNode } = pipeToNode(client, targetUrl);
      client.on('message', (data) => {
        const text = String(data);
        const answer = relay.#refusal(text, refusal);
        if (answer !== undefined) client.send(answer);
        else toNode(text);
      });
    });
    return relay;
  }

  /** The relay's own answer to a frame: a refused eth_getLogs (a single call with numeric bounds). */
  #refusal(text: string, refusal: LogsRefusal): string | undefined {
    const call = JSON.parse(text) as { id?: unknown; method?: unknown; params?: Array<{ fromBlock?: unknown; toBlock?: unknown }> };
    const filter = call.params?.[0];
    if (call.method !== 'eth_getLogs' || typeof filter?.fromBlock !== 'string' || typeof filter.toBlock !== 'string') return undefined;
    if (!filter.fromBlock.startsWith('0x') || !filter.toBlock.startsWith('0x')) return undefined;
    const message = refusal({ from: BigInt(filter.fromBlock), to: BigInt(filter.toBlock) });
    if (message === undefined) return undefined;
    this.refused++;
    return JSON.stringify({ jsonrpc: '2.0', id: call.id, error: { code: -32602, message } });
  }

  async close(): Promise<void> {
    for (const client of this.#server.clients) client.terminate();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
