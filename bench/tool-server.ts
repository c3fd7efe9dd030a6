// What every benchmark server tool shares: its --host, --port and --max-seconds flags, and the
// `listening` event that tells run-all its port, after which the tool lives until run-all goes away
// or --max-seconds pass.
import uWS from '@trufflesuite/uws-js-unofficial';
import { boundLifetime, emit, num } from './process-util.js';

/** parseArgs options of every server tool. */
export const SERVER_OPTIONS = {
  host: { type: 'string', default: '127.0.0.1' },
  port: { type: 'string', default: '0' },
  'max-seconds': { type: 'string' },
} as const;

export interface ServerArgs {
  host: string;
  port: string;
  'max-seconds'?: string | undefined;
}

/** The tool listens on `port`: bound its lifetime (`stop` runs at the end) and tell run-all. */
export function announceListening(tool: string, port: number, args: ServerArgs, stop: () => void, extra: Record<string, unknown> = {}): void {
  boundLifetime(num(args['max-seconds'], 900, 'max-seconds'), stop);
  emit({ event: 'listening', tool, port, pid: process.pid, ...extra });
}

/**
 * Listen with a uWebSockets.js app on --host/--port (exit 1 if it cannot); `started` runs once
 * listening and may return what to stop at the end and fields for the `listening` event.
 */
export function listenUws(
  app: uWS.TemplatedApp,
  tool: string,
  args: ServerArgs,
  started: () => { stop?: () => void; extra?: Record<string, unknown> } = () => ({}),
): void {
  app.listen(args.host, num(args.port, 0, 'port'), (listenSocket) => {
    if (listenSocket === false) {
      process.stderr.write(`${tool}: cannot listen on ${args.host}:${args.port}\n`);
      process.exit(1);
    }
    const { stop, extra } = started();
    const close = (): void => {
      stop?.();
      uWS.us_listen_socket_close(listenSocket);
    };
    announceListening(tool, uWS.us_socket_local_port(listenSocket), args, close, extra);
  });
}
