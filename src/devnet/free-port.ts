import { createServer } from 'node:net';

/**
 * Ask the OS for a port that is free right now on `host`: bind port 0, read the port, close.
 *
 * Another process may take the port between this call and the moment the caller binds it;
 * callers that spawn a server on it (anvil) retry with a fresh port when the bind fails.
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close((error) => {
        if (error) reject(error);
        else if (port === 0) reject(new Error(`could not read a free port on ${host}`));
        else resolve(port);
      });
    });
  });
}
