/**
 * A WebSocket relay on 127.0.0.1 in front of one node, as a provider's load balancer with a bad
 * backend behind it: connections made while `holding` is set reach a backend that answers calls
 * and never answers eth_subscribe; connections made before or after pass every frame. Connections
 * can be cut, all of them or those that carried an eth_subscribe (the node's stream socket).
 */
import { WebSocketServer, type WebSocket } from 'ws';
import { pipeToNode } from './relay-pipe.js';

interface Relayed {
  client: WebSocket;
  node: WebSocket;
  /** an eth_subscribe went through it */
  carriedSubscribe: boolean;
}

export class SubscribeHoldRelay {
  readonly url: string;
  /** connections made from now on hold every eth_subscribe unanswered */
  holding = false;
  /** eth_subscribe calls held so far */
  held = 0;
  readonly #server: WebSocketServer;
  readonly #relayed = new Set<Relayed>();

  private constructor(server: WebSocketServer, port: number) {
    this.#server = server;
    this.url = `ws://127.0.0.1:${port}`;
  }

  static async start(targetUrl: string): Promise<SubscribeHoldRelay> {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => server.once('listening', resolve));
    const relay = new SubscribeHoldRelay(server, (server.address() as { port: number }).port);
    server.on('connection', (client) => relay.#relay(client, targetUrl));
    return relay;
  }

  /** Close every connection that carried an eth_subscribe. */
  cutStreamSockets(): void {
    for (const relayed of this.#relayed) if (relayed.carriedSubscribe) relayed.client.terminate();
  }

  /** Close every connection. */
  cut(): void {
    for (const relayed of this.#relayed) relayed.client.terminate();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #relay(client: WebSocket, targetUrl: string): void {
    const holds = this.holding;
    const { node, toNode } = pipeToNode(client, targetUrl);
    const relayed: Relayed = { client, node, carriedSubscribe: false };
    this.#relayed.add(relayed);
    client.on('close', () => this.#relayed.delete(relayed));
    client.on('message', (data) => {
      const text = String(data);
      if ((JSON.parse(text) as { method?: unknown }).method === 'eth_subscribe') {
        relayed.carriedSubscribe = true;
        if (holds) {
          this.held++;
          return;
        }
      }
      toNode(text);
    });
  }
}
