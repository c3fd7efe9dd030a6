/**
 * A WebSocket relay on 127.0.0.1 in front of one node whose eth_getBlockByHash calls can be held
 * and let go (a node slow to answer a stream's walk back over a reorg), and whose connections can
 * be cut and refused until let in again (the node away for as long as a test needs).
 */
import { WebSocketServer, type WebSocket } from 'ws';
import { pipeToNode } from './relay-pipe.js';

export class HeaderHoldRelay {
  readonly url: string;
  /** eth_getBlockByHash calls are held from now until release() */
  holding = false;
  /** eth_getBlockByHash calls held so far */
  held = 0;
  /** handshakes are refused (503) while set: from cut() until admit() */
  readonly #refusing: { now: boolean };
  readonly #server: WebSocketServer;
  readonly #clients = new Set<WebSocket>();
  readonly #waiting: Array<() => void> = [];

  private constructor(server: WebSocketServer, port: number, refusing: { now: boolean }) {
    this.#server = server;
    this.#refusing = refusing;
    this.url = `ws://127.0.0.1:${port}`;
  }

  static async start(targetUrl: string): Promise<HeaderHoldRelay> {
    const refusing = { now: false };
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0, verifyClient: (_info, done) => done(!refusing.now, 503) });
    await new Promise<void>((resolve) => server.once('listening', resolve));
    const relay = new HeaderHoldRelay(server, (server.address() as { port: number }).port, refusing);
    server.on('connection', (client) => relay.#relay(client, targetUrl));
    return relay;
  }

  /** Close every connection and refuse new ones until admit(). */
  cut(): void {
    this.#refusing.now = true;
    for (const client of this.#clients) client.terminate();
  }

  admit(): void {
    this.#refusing.now = false;
  }

  /** Stop holding; the held calls go on to the node. */
  release(): void {
    this.holding = false;
    for (const send of this.#waiting.splice(0)) send();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #relay(client: WebSocket, targetUrl: string): void {
    const { toNode } = pipeToNode(client, targetUrl);
    this.#clients.add(client);
    client.on('close', () => this.#clients.delete(client));
    client.on('message', (data) => {
      const text = String(data);
      if (this.holding && text.includes('"eth_getBlockByHash"')) {
        this.held++;
        this.#waiting.push(() => toNode(text));
        return;
      }
      toNode(text);
    });
  }
}
