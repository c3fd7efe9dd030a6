/**
 * A WebSocket relay on 127.0.0.1 in front of one node that answers the calls of one method with an
 * error while told to (a provider's rate limit on that method alone: its other calls, its probes
 * and its streams go on), and drops one subscription notification when told to (a head or a log the
 * node's stream skipped). Every other frame passes through untouched.
 */
import { WebSocketServer } from 'ws';
import { pipeToNode } from './relay-pipe.js';

/** What a rate-limited call is answered with (Infura's and Alchemy's code). */
export const RATE_LIMITED = { code: -32005, message: 'request rate limited' };

export class MethodFailRelay {
  readonly url: string;
  /** calls of this method are answered with RATE_LIMITED, while set */
  failing: string | undefined;
  /** calls answered with RATE_LIMITED so far */
  failed = 0;
  /** the next notification whose frame holds this text is dropped */
  #dropNext: string | undefined;
  readonly #server: WebSocketServer;

  private constructor(server: WebSocketServer, port: number) {
    this.#server = server;
    this.url = `ws://127.0.0.1:${port}`;
  }

  static async start(targetUrl: string): Promise<MethodFailRelay> {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => server.once('listening', resolve));
    const relay = new MethodFailRelay(server, (server.address() as { port: number }).port);
    server.on('connection', (client) => {
      const { toNode } = pipeToNode(client, targetUrl, (text) => relay.#passes(text));
      client.on('message', (data) => {
        const text = String(data);
        const answer = relay.#answer(text);
        if (answer !== undefined) client.send(answer);
        else toNode(text);
      });
    });
    return relay;
  }

  /** Drop the next subscription notification holding `marker` ('"parentHash"': a head, '"logIndex"': a log). */
  dropNext(marker: string): void {
    this.#dropNext = marker;
  }

  async close(): Promise<void> {
    for (const client of this.#server.clients) client.terminate();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #passes(text: string): boolean {
    if (this.#dropNext === undefined || !text.includes('"eth_subscription"') || !text.includes(this.#dropNext)) return true;
    this.#dropNext = undefined;
    return false;
  }

  /** The relay's own answer to a frame: a call of the failing method (a single call, not a batch). */
  #answer(text: string): string | undefined {
    if (this.failing === undefined) return undefined;
    const call = JSON.parse(text) as { id?: unknown; method?: unknown };
    if (call.method !== this.failing) return undefined;
    this.failed++;
    return JSON.stringify({ jsonrpc: '2.0', id: call.id, error: RATE_LIMITED });
  }
}
