/**
 * A TCP relay on 127.0.0.1 that hands each connection's bytes from the node back to its client at
 * a set rate, like a node at the far end of a narrow link. Each connection has its own rate, as
 * TCP flows sharing a link each get a share of it; the client's bytes to the node pass at once.
 */
import net, { type Socket } from 'node:net';

const TICK_MS = 10;

export class SlowLink {
  readonly port: number;
  readonly #server: net.Server;
  readonly #sockets = new Set<Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();

  private constructor(server: net.Server, port: number) {
    this.#server = server;
    this.port = port;
  }

  /** Relay to 127.0.0.1:`targetPort`, `bytesPerSecond` from node to client on each connection. */
  static async start(targetPort: number, bytesPerSecond: number): Promise<SlowLink> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const link = new SlowLink(server, (server.address() as net.AddressInfo).port);
    server.on('connection', (client) => link.#relay(client, targetPort, (bytesPerSecond * TICK_MS) / 1000));
    return link;
  }

  async close(): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer);
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #relay(client: Socket, targetPort: number, bytesPerTick: number): void {
    const node = net.connect(targetPort, '127.0.0.1');
    this.#sockets.add(client).add(node);
    const waiting: Buffer[] = [];
    let waitingBytes = 0;
    client.pipe(node);
    node.on('data', (chunk: Buffer) => {
      waiting.push(chunk);
      waitingBytes += chunk.length;
      if (waitingBytes > 4 * bytesPerTick) node.pause();
    });
    const timer = setInterval(() => {
      let budget = bytesPerTick;
      while (budget > 0 && waiting.length > 0) {
        const chunk = waiting[0]!;
        const part = chunk.subarray(0, budget);
        client.write(part);
        budget -= part.length;
        waitingBytes -= part.length;
        if (part.length === chunk.length) waiting.shift();
        else waiting[0] = chunk.subarray(part.length);
      }
      if (waitingBytes <= 4 * bytesPerTick) node.resume();
      if (waiting.length === 0 && node.readableEnded) client.end();
    }, TICK_MS);
    this.#timers.add(timer);
    const done = (): void => {
      clearInterval(timer);
      this.#timers.delete(timer);
      client.destroy();
      node.destroy();
      this.#sockets.delete(client);
      this.#sockets.delete(node);
    };
    client.on('close', done).on('error', done);
    node.on('close', () => {
      if (waiting.length === 0) done();
    }).on('error', done);
  }
}
