/** An UpstreamConnection to a node on 127.0.0.1 for unit tests: quiet, slow to ping and reconnect unless told otherwise, closed when the test ends. */
import type { TestContext } from 'node:test';
import { createLogger } from '../../src/log.js';
import { UpstreamConnection, type ConnectionOptions } from '../../src/upstream/connection.js';
import { FrameLimit } from '../../src/upstream/frame-limit.js';

export function testConnection(t: TestContext, port: number, overrides: Partial<ConnectionOptions> = {}): UpstreamConnection {
  const connection = new UpstreamConnection({
    upstream: 'node',
    url: `ws://127.0.0.1:${port}`,
    heartbeat: { intervalMs: 60_000, timeoutMs: 60_000 },
    reconnect: { baseMs: 60_000, maxMs: 60_000 },
    maxAnswerBytes: 1024 * 1024,
    maxBytesInFlight: 1024 * 1024,
    frameLimit: new FrameLimit(),
    logger: createLogger('silent'),
    ...overrides,
  });
  t.after(() => connection.close());
  return connection;
}
