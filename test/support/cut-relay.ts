/**
 * A TCP relay on 127.0.0.1 in front of one node whose connections can be cut: every one reset at
 * once, and those that come in the next moments refused the same way, as a network blip or a load
 * balancer restarting does to the sockets evmux holds to a node.
 */
import net from 'node:net';

export class CutRelay {
  readonly port: number;
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  #refusingUntil = 0;
  #muted = false;

  private constructor(server: net.Server, port: number) {
    this.#server = server;
    this.port = port;
  }

  static async start(targetPort: number): Promise<CutRelay> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const relay = new CutRelay(server, (server.address() as net.AddressInfo).port);
    server.on('connection', (client) => {
      if (Date.now() < relay.#refusingUntil) {
        client.resetAndDestroy();
        return;
      }
      const target = net.connect(targetPort, '127.0.0.1');
      relay.#sockets.add(client).add(target);
      for (const [from, to] of [[client, target], [target, client]] as const) {
        from.on('data', (chunk: Buffer) => {
          if (!(from === target && relay.#muted) && !to.destroyed) to.write(chunk);
        });
        from.on('close', () => {
          relay.#sockets.delete(from);
          to.destroy();
        });
        from.on('error', () => to.destroy());
      }
    });
    return relay;
  }

  /** From now until the next cut, what the node sends is dropped: it takes calls, and answers none. */
  mute(): void {
    this.#muted = true;
  }

  /** What the node sends passes again; what was dropped stays lost (a connection in its handshake hangs). */
  unmute(): void {
    this.#muted = false;
  }

  /** Reset every connection now, and refuse new ones for `refuseMs`. */
  cut(refuseMs: number): void {
    this.#muted = false;
    this.#refusingUntil = Date.now() + refuseMs;
    for (const socket of this.#sockets) socket.resetAndDestroy();
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
