/**
 * A WebSocket relay on 127.0.0.1 in front of one node that notes every call passed on to it (a
 * batch's calls one by one): what a node, or a provider billing for it, saw evmux ask.
 */
import { WebSocketServer, type WebSocket } from 'ws';
import { pipeToNode } from './relay-pipe.js';

export interface RelayedCall {
  method: string;
  params: unknown[];
}

export class CountingRelay {
  readonly url: string;
  /** every call passed on so far, in order */
  readonly calls: RelayedCall[] = [];
  readonly #server: WebSocketServer;

  private constructor(server: WebSocketServer, port: number) {
    this.#server = server;
    this.url = `ws://127.0.0.1:${port}`;
  }

  static async start(targetUrl: string): Promise<CountingRelay> {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => server.once('listening', resolve));
    const relay = new CountingRelay(server, (server.address() as { port: number }).port);
    server.on('connection', (client) => relay.#relay(client, targetUrl));
    return relay;
  }

  /** Calls passed on so far with this method, and params that `accept` takes (all of them by default). */
  count(method: string, accept: (params: unknown[]) => boolean = () => true): number {
    return this.calls.filter((call) => call.method === method && accept(call.params)).length;
  }

  async close(): Promise<void> {
    for (const client of this.#server.clients) client.terminate();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #relay(client: WebSocket, targetUrl: string): void {
    const { toNode } = pipeToNode(client, targetUrl);
    client.on('message', (data) => {
      const text = String(data);
      for (const call of [JSON.parse(text) as RelayedCall | RelayedCall[]].flat()) this.calls.push({ method: call.method, params: call.params ?? [] });
      toNode(text);
    });
  }
}
