/**
 * A batch's calls past limits.maxInFlightPerConnection wait for a slot, in order, and are answered;
 * at most limits.maxBatchSize calls wait on a connection. Calls that come alone past the limit, and
 * calls past what may wait, are refused with -32005 as before. Slow calls on anvil: an eth_call of
 * a loop that burns its gas (state override).
 */
import assert from 'node:assert/strict';
import { after, before, test, type TestContext } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { Probe } from '../support/ws-probe.js';

let devnet: LockstepDevnet;
let evmux: TestGateway;

const IN_FLIGHT = 2;
const BATCH = 6;

before(async () => {
  devnet = await LockstepDevnet.start({ nodes: 1, blockTimeMs: 0 });
  evmux = await startGateway([devnet.nodes[0]!.wsUrl], { limits: { maxInFlightPerConnection: IN_FLIGHT, maxBatchSize: BATCH } }, { logLevel: 'warn' });
});

after(async () => {
  await evmux?.close();
  await devnet?.close();
});

const LOOPER = '0x00000000000000000000000000000000000000aa';
/** An eth_call that loops until its gas is spent: about 100 ms on anvil. */
function slowCall(id: number): Record<string, unknown> {
  return {
    jsonrpc: '2.0',
    id,
    method: 'eth_call',
    params: [{ to: LOOPER, gas: '0x4c4b400' }, 'latest', { [LOOPER]: { code: '0x5b5a61271011600c576000565b00' } }],
  };
}

function codes(reply: unknown): Array<number | 'ok'> {
  assert.ok(Array.isArray(reply), `a batch's answer is an array: ${JSON.stringify(reply)}`);
  return (reply as Array<Record<string, unknown>>).map((item) => ('result' in item ? 'ok' : (item['error'] as { code: number }).code));
}

test('a batch of six slow calls, two in flight at most: all six answered, under their ids, in order', async (t: TestContext) => {
  const probe = await Probe.open(evmux.wsUrl, t);
  probe.send([1, 2, 3, 4, 5, 6].map(slowCall));
  const reply = (await probe.waitFor(() => true, 10_000)).json as Array<Record<string, unknown>>;
  assert.deepEqual(codes(reply), ['ok', 'ok', 'ok', 'ok', 'ok', 'ok']);
  assert.deepEqual(reply.map((item) => item['id']), [1, 2, 3, 4, 5, 6]);

  const response = await fetch(evmux.httpUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify([7, 8, 9, 10, 11, 12].map(slowCall)) });
  assert.deepEqual(codes(await response.json()), ['ok', 'ok', 'ok', 'ok', 'ok', 'ok'], 'over HTTP too');
});

test('calls that come alone past the in-flight limit are refused; a batch behind them waits', async (t: TestContext) => {
  const probe = await Probe.open(evmux.wsUrl, t);
  for (const id of [1, 2, 3]) probe.send(slowCall(id));
  probe.send([4, 5].map(slowCall));
  const answers = new Map<unknown, unknown>();
  while (answers.size < 4) {
    const frame = await probe.waitFor((f) => !answers.has(Array.isArray(f.json) ? 'batch' : (f.json as Record<string, unknown>)['id']), 10_000);
    answers.set(Array.isArray(frame.json) ? 'batch' : (frame.json as Record<string, unknown>)['id'], frame.json);
  }
  const third = answers.get(3) as { error?: { code: number; message: string } };
  assert.equal(third.error?.code, -32005);
  assert.match(third.error.message, /too many requests in flight on this connection: at most 2 \(limits\.maxInFlightPerConnection\)/);
  assert.ok('result' in (answers.get(1) as object) && 'result' in (answers.get(2) as object));
  assert.deepEqual(codes(answers.get('batch')), ['ok', 'ok']);
});

test('at most limits.maxBatchSize calls wait on a connection; the rest are refused under their ids', async (t: TestContext) => {
  const probe = await Probe.open(evmux.wsUrl, t);
  // 2 in flight and 4 waiting from the first batch; the second's first 2 wait too, its last 4 do not.
  probe.send([1, 2, 3, 4, 5, 6].map(slowCall));
  probe.send([7, 8, 9, 10, 11, 12].map(slowCall));
  const first = (await probe.waitFor((f) => Array.isArray(f.json) && (f.json[0] as Record<string, unknown>)['id'] === 1, 10_000)).json;
  const second = (await probe.waitFor((f) => Array.isArray(f.json) && (f.json[0] as Record<string, unknown>)['id'] === 7, 10_000)).json;
  assert.deepEqual(codes(first), ['ok', 'ok', 'ok', 'ok', 'ok', 'ok']);
  assert.deepEqual(codes(second), ['ok', 'ok', -32005, -32005, -32005, -32005]);
  // The connection goes on: a call after them is answered.
  assert.match(String(await probe.call('eth_blockNumber')), /^0x/);
});

test('a client that leaves with calls waiting: they are settled unsent, and the gateway carries on', async (t: TestContext) => {
  const leaving = await Probe.open(evmux.wsUrl, t);
  leaving.send([1, 2, 3, 4, 5, 6].map(slowCall));
  await new Promise((resolve) => setTimeout(resolve, 20));
  leaving.ws.terminate();
  const probe = await Probe.open(evmux.wsUrl, t);
  probe.send([1, 2].map(slowCall));
  assert.deepEqual(codes((await probe.waitFor(() => true, 10_000)).json), ['ok', 'ok']);
  const status = JSON.parse((await evmux.get('/status')).body) as { upstreams: Array<{ inFlight: number }> };
  assert.ok(status.upstreams.every((node) => node.inFlight <= IN_FLIGHT), JSON.stringify(status.upstreams.map((node) => node.inFlight)));
});

test('an HTTP client that leaves while calls of its batch wait: the request is closed, and a shutdown does not wait for it', async () => {
  const own = await startGateway([devnet.nodes[0]!.wsUrl], { limits: { maxInFlightPerConnection: IN_FLIGHT, maxBatchSize: BATCH }, shutdownGraceMs: 5_000 }, { logLevel: 'warn' });
  const aborted = new AbortController();
  const request = fetch(own.httpUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify([1, 2, 3, 4, 5, 6].map(slowCall)), signal: aborted.signal });
  await new Promise((resolve) => setTimeout(resolve, 50));
  aborted.abort();
  await assert.rejects(request);
  // The two calls in flight settle (about 100 ms each); the four waiting ones are then settled unsent.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const started = performance.now();
  await own.close();
  assert.ok(performance.now() - started < 2_000, `shut down in ${Math.round(performance.now() - started)} ms, not after the 5 s grace`);
});
