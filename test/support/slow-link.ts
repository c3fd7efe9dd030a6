/**
 * A TCP relay on 127.0.0.1 that passes each connection's bytes at a set rate, like a node at the
 * far end of a narrow link: from the node to its client (`down`), from the client to the node
 * (`up`), or both. Each connection has its own rate, as TCP flows sharing a link each get a share
 * of it; a direction with no rate passes at once.
 */
import net, { type Socket } from 'node:net';

const TICK_MS = 10;

/** Bytes per second, per direction. */
export interface LinkRates {
  down?: number;
  up?: number;
}

export class SlowLink {
  readonly port: number;
  readonly #server: net.Server;
  readonly #sockets = new Set<Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();

  private constructor(server: net.Server, port: number) {
    this.#server = server;
    this.port = port;
  }

  /** Relay to 127.0.0.1:`targetPort` at `rates`. */
  static async start(targetPort: number, rates: LinkRates): Promise<SlowLink> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const link = new SlowLink(server, (server.address() as net.AddressInfo).port);
    server.on('connection', (client) => link.#relay(client, targetPort, rates));
    return link;
  }

  async close(): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer);
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #relay(client: Socket, targetPort: number, rates: LinkRates): void {
    const node = net.connect(targetPort, '127.0.0.1');
    this.#sockets.add(client).add(node);
    const down = this.#pass(node, client, rates.down);
    const up = this.#pass(client, node, rates.up);
    const done = (): void => {
      down.stop();
      up.stop();
      client.destroy();
      node.destroy();
      this.#sockets.delete(client);
      this.#sockets.delete(node);
    };
    // A side that closes has its bytes still waiting passed on first (a closing node's last
    // answer): the other side is ended once they are, and its close ends the relay.
    client.on('close', () => up.idle() && done()).on('error', done);
    node.on('close', () => down.idle() && done()).on('error', done);
  }

  /** Pass `from`'s bytes to `to` at `bytesPerSecond` (at once when undefined). */
  #pass(from: Socket, to: Socket, bytesPerSecond: number | undefined): { stop(): void; idle(): boolean } {
    if (bytesPerSecond === undefined) {
      from.pipe(to);
      return { stop: () => undefined, idle: () => true };
    }
    const bytesPerTick = (bytesPerSecond * TICK_MS) / 1000;
    const waiting: Buffer[] = [];
    let waitingBytes = 0;
    from.on('data', (chunk: Buffer) => {
      waiting.push(chunk);
      waitingBytes += chunk.length;
      if (waitingBytes > 4 * bytesPerTick) from.pause();
    });
    const timer = setInterval(() => {
      let budget = bytesPerTick;
      while (budget > 0 && waiting.length > 0) {
        const chunk = waiting[0]!;
        const part = chunk.subarray(0, budget);
        to.write(part);
        budget -= part.length;
        waitingBytes -= part.length;
        if (part.length === chunk.length) waiting.shift();
        else waiting[0] = chunk.subarray(part.length);
      }
      if (waitingBytes <= 4 * bytesPerTick) from.resume();
      if (waiting.length === 0 && from.readableEnded) to.end();
    }, TICK_MS);
    this.#timers.add(timer);
    return {
      stop: () => {
        clearInterval(timer);
        this.#timers.delete(timer);
      },
      idle: () => waiting.length === 0,
    };
  }
}
