/**
 * A filter not polled for five minutes is forgotten (as geth forgets one), and /status counts only
 * the filters remembered: when every filter client has left, no filter call comes to make evmux
 * look, and their count stayed (with the memory behind it) for good. The clock is moved, not waited.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { IDLE_MS } from '../../src/router/filter-book.js';
import { startGateway } from '../support/gateway.js';
import { rpcAnswer } from '../support/node-rpc.js';

test('filters nobody polls for five minutes leave /status with no filter call to prompt it; one polled meanwhile stays', async (t) => {
  const devnet = await LockstepDevnet.start({ nodes: 1, blockTimeMs: 0 });
  t.after(() => devnet.close());
  const evmux = await startGateway(devnet.nodes.map((node) => node.wsUrl), {}, { logLevel: 'warn' });
  t.after(() => evmux.close());
  const filters = async (): Promise<number> => (JSON.parse((await evmux.get('/status')).body) as { filters: number }).filters;
  const made: string[] = [];
  for (let i = 0; i < 5; i++) made.push((await rpcAnswer(evmux.httpUrl, 'eth_newBlockFilter', [])).result as string);
  assert.equal(await filters(), 5);

  // The monotonic clock, which evmux times durations on.
  const realNow = performance.now.bind(performance);
  let ahead = IDLE_MS - 1_000;
  t.mock.method(performance, 'now', () => realNow() + ahead);
  assert.deepEqual((await rpcAnswer(evmux.httpUrl, 'eth_getFilterChanges', [made[0]])).error, undefined);
  ahead = IDLE_MS + 1_000;
  await rpcAnswer(evmux.httpUrl, 'eth_blockNumber', []);
  assert.equal(await filters(), 1, 'the four filters not polled for five minutes are forgotten; the one polled is kept');
});
