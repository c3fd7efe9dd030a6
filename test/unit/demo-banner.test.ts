import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../../src/config/schema.js';
import { demoBanner } from '../../src/demo.js';
import type { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';

const devnet = {
  nodes: [{ wsUrl: 'ws://127.0.0.1:9001' }],
  emitterAddress: '0x00000000000000000000000000000000000000ee',
  emitterTopic: `0x${'ab'.repeat(32)}`,
} as unknown as LockstepDevnet;

test('the demo banner names /status and /metrics where they are served: the client port, or the admin listener', () => {
  const plain = demoBanner(parseConfig({ upstreams: [{ url: 'ws://127.0.0.1:1' }] }), 8547, devnet);
  assert.match(plain, /status {14}http:\/\/127\.0\.0\.1:8547\/status/);
  assert.match(plain, /metrics {13}http:\/\/127\.0\.0\.1:8547\/metrics/);
  const withAdmin = demoBanner(parseConfig({ upstreams: [{ url: 'ws://127.0.0.1:1' }], host: '::1', admin: { port: 0 } }), 8547, devnet, 9547);
  assert.match(withAdmin, /WebSocket JSON-RPC {2}ws:\/\/\[::1\]:8547\//);
  assert.match(withAdmin, /status {14}http:\/\/127\.0\.0\.1:9547\/status/);
  assert.match(withAdmin, /metrics {13}http:\/\/127\.0\.0\.1:9547\/metrics/);
});
