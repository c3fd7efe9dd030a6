/**
 * `limits.requestsPerSecondPerClient`: each client (here told apart by an API key in the query,
 * `subscriptions.sessionKey`) has its own budget over both transports; a request over it gets
 * -32005 under its own id, other clients are not touched, and the budget refills with time.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeNode } from '../support/fake-node.js';
import { startGateway } from '../support/gateway.js';
import { sumSamples } from '../support/prom-text.js';
import { sleep, StreamClient } from '../support/stream-recorder.js';

interface Answer {
  id: number;
  result?: unknown;
  error?: { code: number; message: string };
}

test('each client gets its rate, over HTTP and WebSocket alike; the rest are refused with -32005 and counted', async (t) => {
  const node = await FakeNode.start();
  t.after(() => node.close());
  const evmux = await startGateway([node.url], {
    limits: { requestsPerSecondPerClient: 2, requestBurstPerClient: 5 },
    subscriptions: { sessionKey: { source: 'query', name: 'key' } },
  });
  t.after(() => evmux.close());

  const batch = Array.from({ length: 8 }, (_, i) => ({ jsonrpc: '2.0', id: i + 1, method: 'net_version', params: [] }));
  const response = await fetch(`${evmux.httpUrl}?key=alice`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(batch) });
  const answers = (await response.json()) as Answer[];
  assert.equal(response.status, 200);
  assert.deepEqual(
    answers.map((answer) => [answer.id, answer.error?.code ?? 'ok']),
    [[1, 'ok'], [2, 'ok'], [3, 'ok'], [4, 'ok'], [5, 'ok'], [6, -32005], [7, -32005], [8, -32005]],
  );
  assert.equal(answers[5]!.error!.message, 'rate limit: this client may send 2 requests per second, 5 at once (limits.requestsPerSecondPerClient); retry later');

  const alice = await StreamClient.open(`${evmux.wsUrl}?key=alice`, 'alice');
  t.after(() => alice.close());
  const bob = await StreamClient.open(`${evmux.wsUrl}?key=bob`, 'bob');
  t.after(() => bob.close());
  assert.equal(((await alice.request('net_version', []))['error'] as Answer['error'])?.code, -32005, 'the same client over WebSocket shares the budget');
  const bobs = await Promise.all(Array.from({ length: 5 }, () => bob.request('net_version', [])));
  assert.ok(bobs.every((answer) => answer['result'] !== undefined), 'another client has its own');
  assert.equal(sumSamples((await evmux.get('/metrics')).body, 'evmux_client_rejections_total', { reason: 'rate_limit' }), 4);

  // One token comes back every 500 ms.
  await sleep(600);
  assert.ok((await alice.request('net_version', []))['result'] !== undefined, 'refilled with time');
  assert.equal(alice.closeCode, undefined, 'a refused request leaves the connection open');
});
