/**
 * One upstream URL in front of several backends (a provider's load balancer): the call socket and
 * the stream socket can land on different backends. When the stream's backend stops sending heads
 * while the call socket's goes on, there is no other node for the sessions to move to, and making
 * the subscription again on the same socket reaches the same stuck backend. evmux then makes the
 * stream socket anew, every health.stallMs while it stays silent, so the stream is never silent for
 * good (it was, after one warning: the client's head froze while eth_blockNumber went on rising).
 * The client's heads continue without a gap.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeNode } from '../support/fake-node.js';
import { startGateway } from '../support/gateway.js';
import { StreamClient, waitUntil } from '../support/stream-recorder.js';
import { tcpBalancer } from '../support/tcp-balancer.js';

const STALL_MS = 800;

test('a stream whose backend behind one upstream URL stops sending heads is made anew, without a gap', async (t) => {
  const backends = await Promise.all([0, 1].map(() => FakeNode.start({ seed: 'balanced', blockTimeMs: 150 })));
  t.after(() => Promise.all(backends.map((node) => node.close())));
  const lb = await tcpBalancer(backends, 2);
  t.after(() => lb.close());
  const evmux = await startGateway([{ name: 'provider', url: `ws://127.0.0.1:${lb.port}` }], { health: { stallMs: STALL_MS } });
  t.after(() => evmux.close());
  const client = await StreamClient.open(evmux.wsUrl, 'wallet');
  t.after(() => client.close());
  const id = await client.subscribe(['newHeads']);
  await client.first(id);
  await waitUntil('the stream on a backend', () => backends.some((node) => node.stats.liveSubscriptions > 0), 3_000);
  const stuck = backends.find((node) => node.stats.liveSubscriptions > 0)!;
  stuck.emitHeads = false;
  lb.target = backends.find((node) => node !== stuck)!;
  // Silent for stallMs, made again on the same socket (a one-time catch-up from the probed head),
  // silent for another stallMs, then a new socket: heads flow again, and go on flowing.
  await new Promise((resolve) => setTimeout(resolve, STALL_MS * 5));
  const later = client.heads(id).at(-1)!.number;
  await waitUntil('heads still coming', () => client.heads(id).at(-1)!.number > later + 5n, 3_000);
  const numbers = client.heads(id).map((head) => head.number);
  const gaps = numbers.slice(1).filter((number, i) => number !== numbers[i]! + 1n);
  assert.deepEqual(gaps, [], `heads ${numbers.join(',')}`);
  assert.ok(evmux.logs.some((line) => line['msg'] === 'newHeads stream still silent while the chain moves: reconnecting its socket'));
});
