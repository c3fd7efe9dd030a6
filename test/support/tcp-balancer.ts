/**
 * A TCP load balancer in front of fake nodes, as a provider's URL is: each new connection goes to
 * `target` (a test moves it, as a health check would), connections made before stay where they
 * are (connection draining).
 */
import net from 'node:net';
import type { FakeNode } from './fake-node.js';

export interface TcpBalancer {
  readonly port: number;
  /** where new connections go */
  target: FakeNode;
  /** connections open now */
  readonly open: number;
  close(): Promise<void>;
}

/** `roundRobin`: the first this many connections go round robin over `targets` (while `target` is unmoved). */
export async function tcpBalancer(targets: FakeNode[], roundRobin = 0): Promise<TcpBalancer> {
  const pairs: Array<[net.Socket, net.Socket]> = [];
  let next = 0;
  const server = net.createServer((client) => {
    const backend = lb.target === targets[0] && next < roundRobin ? targets[next++ % targets.length]! : lb.target;
    const upstream = net.connect(backend.port, '127.0.0.1');
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.push(pair);
    client.pipe(upstream).pipe(client);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      const at = pairs.indexOf(pair);
      if (at >= 0) pairs.splice(at, 1);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  const lb: TcpBalancer & { port: number } = {
    port: 0,
    target: targets[0]!,
    get open() {
      return pairs.length;
    },
    close: () => {
      for (const [client, upstream] of [...pairs]) {
        client.destroy();
        upstream.destroy();
      }
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  lb.port = (server.address() as net.AddressInfo).port;
  return lb;
}
