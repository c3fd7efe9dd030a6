/**
 * A WebSocket relay on 127.0.0.1 in front of one node whose header calls can be held and let go,
 * or answered with an error: by hash (a node slow to answer a stream's walk back over a reorg) or
 * by height (a replay's walk over a gap); and whose connections can be cut and refused until let
 * in again (the node away for as long as a test needs).
 */
import { WebSocketServer, type WebSocket } from 'ws';
import { pipeToNode } from './relay-pipe.js';

/**
 * Which header calls are held: eth_getBlockByHash, or eth_getBlockByNumber of a height above
 * genesis (not a tag such as latest; block 0 is what evmux's chain check on connect asks for).
 */
export type HeldHeaders = 'byHash' | 'byNumber';

interface HeldCall {
  pass: () => void;
  fail: () => void;
}

export class HeaderHoldRelay {
  readonly url: string;
  /** header calls are held from now until release() or fail() */
  holding = false;
  /** header calls held so far */
  held = 0;
  /** handshakes are refused (503) while set: from cut() until admit() */
  readonly #refusing: { now: boolean };
  readonly #server: WebSocketServer;
  readonly #clients = new Set<WebSocket>();
  readonly #waiting: HeldCall[] = [];
  readonly #holds: (call: { method?: unknown; params?: unknown }) => boolean;

  private constructor(server: WebSocketServer, port: number, refusing: { now: boolean }, headers: HeldHeaders) {
    this.#server = server;
    this.#refusing = refusing;
    this.#holds = headers === 'byHash' ? (call) => call.method === 'eth_getBlockByHash' : isHeightCall;
    this.url = `ws://127.0.0.1:${port}`;
  }

  static async start(targetUrl: string, headers: HeldHeaders = 'byHash'): Promise<HeaderHoldRelay> {
    const refusing = { now: false };
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0, verifyClient: (_info, done) => done(!refusing.now, 503) });
    await new Promise<void>((resolve) => server.once('listening', resolve));
    const relay = new HeaderHoldRelay(server, (server.address() as { port: number }).port, refusing, headers);
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
    for (const call of this.#waiting.splice(0)) call.pass();
  }

  /** Stop holding; the held calls are answered with an error (a node behind a load balancer whose backend lacks them). */
  fail(): void {
    this.holding = false;
    for (const call of this.#waiting.splice(0)) call.fail();
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
      const call = this.holding ? (JSON.parse(text) as { id?: unknown; method?: unknown; params?: unknown }) : undefined;
      if (call !== undefined && this.#holds(call)) {
        this.held++;
        const error = { jsonrpc: '2.0', id: call.id, error: { code: -32000, message: 'header not found' } };
        this.#waiting.push({ pass: () => toNode(text), fail: () => client.send(JSON.stringify(error)) });
        return;
      }
      toNode(text);
    });
  }
}

function isHeightCall(call: { method?: unknown; params?: unknown }): boolean {
  const ref = Array.isArray(call.params) ? (call.params[0] as unknown) : undefined;
  return call.method === 'eth_getBlockByNumber' && typeof ref === 'string' && ref.startsWith('0x') && BigInt(ref) > 0n;
}
