/**
 * The admin listener (`admin.port`): /metrics and /status, and the health checks, on an address of
 * their own, so that the port clients reach does not show them upstream names, heads and traffic.
 * Scrapes and probes are a few requests a second: Node's own HTTP server serves them, apart from
 * the client front end.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HttpResponse } from './front-end.js';
import { ListenError, listenAddress } from './listen-error.js';

export interface AdminServer {
  /** the port it listens on (the one picked when `admin.port` is 0) */
  readonly port: number;
  /** Stop listening and drop its connections, idle keep-alive ones included. */
  close(): Promise<void>;
}

/** Answers a GET for a path, given apart from its query (without the '?'). */
export type AdminRoutes = (path: string, query: string) => Promise<HttpResponse>;

/**
 * Listen; `onError` hears of requests that failed, and of errors of the listener itself once it
 * listens (an accept() that fails for want of descriptors), which it survives.
 */
export async function startAdminServer(host: string, port: number, routes: AdminRoutes, onError: (error: unknown) => void): Promise<AdminServer> {
  const server = createServer((request, response) => void answer(request, response, routes, onError));
  await new Promise<void>((resolve, reject) => {
    const refused = (error: Error): void => reject(new ListenError(`cannot listen on ${listenAddress(host, port)} (admin.port): ${error.message}`));
    server.once('error', refused);
    server.listen(port, host, () => {
      // Left in place, the listen-time listener would swallow the first such error, and the next would end the process.
      server.off('error', refused);
      server.on('error', onError);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function answer(request: IncomingMessage, response: ServerResponse, routes: AdminRoutes, onError: (error: unknown) => void): Promise<void> {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' }).end('the admin listener answers GET /healthz /readyz /status /metrics\n');
    return;
  }
  let reply: HttpResponse;
  try {
    const url = request.url ?? '/';
    const mark = url.indexOf('?');
    reply = await routes(mark < 0 ? url : url.slice(0, mark), mark < 0 ? '' : url.slice(mark + 1));
  } catch (error) {
    onError(error);
    reply = { status: 500, contentType: 'text/plain', body: 'internal error\n' };
  }
  response.writeHead(reply.status, { 'content-type': reply.contentType, ...reply.headers });
  response.end(request.method === 'HEAD' ? undefined : reply.body);
}
