/**
 * A TCP relay on 127.0.0.1 that holds every chunk for a fixed time in each direction, like a node
 * at a provider 100 ms away: what is written arrives `delayMs` later, in order.
 */
import net from 'node:net';

export class DelayRelay {
  readonly port: number;
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();

  private constructor(server: net.Server, port: number) {
    this.#server = server;
    this.port = port;
  }

  /** Relay to 127.0.0.1:`targetPort`, each direction `delayMs` late. */
  static async start(targetPort: number, delayMs: number): Promise<DelayRelay> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const relay = new DelayRelay(server, (server.address() as net.AddressInfo).port);
    server.on('connection', (client) => {
      const target = net.connect(targetPort, '127.0.0.1');
      relay.#sockets.add(client).add(target);
      const pass = (from: net.Socket, to: net.Socket): void => {
        from.on('data', (chunk: Buffer) => setTimeout(() => to.destroyed || to.write(chunk), delayMs));
        from.on('close', () => setTimeout(() => to.destroy(), delayMs));
        from.on('error', () => to.destroy());
      };
      pass(client, target);
      pass(target, client);
    });
    return relay;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
