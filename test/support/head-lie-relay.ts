/**
 * A WebSocket relay on 127.0.0.1 in front of one node whose eth_blockNumber answers say `lead`
 * blocks more than the node has (a node or proxy whose head number runs ahead of its blocks); its
 * blocks, its newHeads stream and every other call pass through untouched. The relay answers
 * eth_blockNumber itself, from the node's own answer over HTTP.
 */
import { WebSocketServer, WebSocket } from 'ws';
import { rpc } from './node-rpc.js';
import { pipeToNode } from './relay-pipe.js';

export class HeadLieRelay {
  readonly url: string;
  /** eth_blockNumber calls answered with the lie */
  lied = 0;
  readonly #server: WebSocketServer;

  private constructor(server: WebSocketServer, port: number) {
    this.#server = server;
    this.url = `ws://127.0.0.1:${port}`;
  }

  /** `wsUrl` and `httpUrl`: the node's; `lead`: how far ahead of it its eth_blockNumber answers are. */
  static async start(wsUrl: string, httpUrl: string, lead: bigint): Promise<HeadLieRelay> {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => server.once('listening', resolve));
    const relay = new HeadLieRelay(server, (server.address() as { port: number }).port);
    server.on('connection', (client) => {
      const { toNode } = pipeToNode(client, wsUrl);
      client.on('message', (data) => {
        const text = String(data);
        const call = JSON.parse(text) as { id?: unknown; method?: unknown };
        if (call.method !== 'eth_blockNumber') {
          toNode(text);
          return;
        }
        rpc<string>(httpUrl, 'eth_blockNumber', [])
          .then((head) => {
            relay.lied++;
            if (client.readyState === WebSocket.OPEN) client.send(JSON.stringify({ jsonrpc: '2.0', id: call.id, result: `0x${(BigInt(head) + lead).toString(16)}` }));
          })
          // The node gone: the call goes unanswered, as it would on the node's own socket.
          .catch(() => undefined);
      });
    });
    return relay;
  }

  async close(): Promise<void> {
    for (const client of this.#server.clients) client.terminate();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
