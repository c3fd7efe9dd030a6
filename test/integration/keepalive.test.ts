/**
 * Client keep-alive: evmux pings every WebSocket client twice per idle timeout (keepalive.ts), a
 * client that answers stays connected however long it says nothing itself, and a client that
 * never answers is closed once the idle timeout passes, within 4 s after it. uWS takes no timeout
 * under 8 s and counts in 4 s steps, so the test uses 8 s.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { WebSocket } from 'ws';
import { FakeNode } from '../support/fake-node.js';
import { startGateway, type TestGateway } from '../support/gateway.js';

const IDLE_TIMEOUT_S = 8;

let node: FakeNode;
let evmux: TestGateway;

before(async () => {
  node = await FakeNode.start({ seed: 'keepalive' });
  evmux = await startGateway([node.url], { limits: { idleTimeoutSeconds: IDLE_TIMEOUT_S } });
});

after(async () => {
  await evmux?.close();
  await node?.close();
});

interface Watched {
  ws: WebSocket;
  pings: number[];
  closed: Promise<{ code: number; at: number }>;
}

async function connect(autoPong: boolean): Promise<Watched> {
  const ws = new WebSocket(evmux.wsUrl, { autoPong });
  const pings: number[] = [];
  ws.on('ping', () => pings.push(Date.now()));
  const closed = new Promise<{ code: number; at: number }>((resolve) => ws.once('close', (code) => resolve({ code, at: Date.now() })));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, pings, closed };
}

test('a client that answers pings stays; one that does not is closed after the idle timeout', async () => {
  const opened = Date.now();
  const live = await connect(true);
  const silent = await connect(false);
  const watchMs = 2.5 * IDLE_TIMEOUT_S * 1000;
  const outcome = await Promise.race([
    silent.closed,
    new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), watchMs)),
  ]);
  assert.ok(outcome !== undefined, `the client that never answers was still open after ${watchMs} ms`);
  const closedAfter = outcome.at - opened;
  // Closed no sooner than the timeout, and within uWS's 4 s granularity after it (given the
  // setting itself, uWS closed it 4 to 8 s after, and cut clients that answered a ping late).
  assert.ok(closedAfter >= IDLE_TIMEOUT_S * 1000 && closedAfter <= IDLE_TIMEOUT_S * 1000 + 4500, `closed after ${closedAfter} ms`);
  assert.ok(silent.pings.length >= 1, 'the silent client was never pinged');

  // The answering client, silent itself all along, outlives several idle timeouts.
  await new Promise((resolve) => setTimeout(resolve, opened + watchMs - Date.now()));
  assert.equal(live.ws.readyState, WebSocket.OPEN, 'the client that answers pings was closed');
  // Twice per timeout: 5 pings in 20 s (the first within 4 s of connecting).
  assert.ok(live.pings.length >= 4 && live.pings.length <= 6, `${live.pings.length} pings in ${watchMs} ms`);
  live.ws.close();
  await live.closed;
});
