/**
 * One WebSocket connection attempt for tests of refused upgrades: open, refused (the HTTP status
 * and body evmux answered), or failed (an error, or no answer within `timeoutMs`).
 */
import { WebSocket, type ClientOptions } from 'ws';

export type UpgradeOutcome = { open: WebSocket } | { status: number; body: string } | { failed: string };

export function attemptUpgrade(url: string, options: ClientOptions & { timeoutMs?: number } = {}): Promise<UpgradeOutcome> {
  const { timeoutMs = 5000, ...clientOptions } = options;
  return new Promise((resolve) => {
    const ws = new WebSocket(url, clientOptions);
    const timer = setTimeout(() => {
      ws.terminate();
      resolve({ failed: `no answer to the upgrade within ${timeoutMs} ms` });
    }, timeoutMs);
    ws.once('open', () => {
      clearTimeout(timer);
      resolve({ open: ws });
    });
    ws.once('unexpected-response', (_request, response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => {
        clearTimeout(timer);
        resolve({ status: response.statusCode ?? 0, body });
      });
    });
    // A refused socket that is then closed reports an error as well: the first one settles.
    ws.on('error', (error) => {
      clearTimeout(timer);
      resolve({ failed: error.message });
    });
  });
}

export const isOpen = (outcome: UpgradeOutcome): outcome is { open: WebSocket } => 'open' in outcome;
