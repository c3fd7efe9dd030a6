/**
 * A body nested deeply, 5 MiB of `[` (under limits.maxRequestBytes), held evmux's event loop in
 * `JSON.parse` (-32700 after), and every other client's calls waited: 1.6 to 2 s on an idle 2-core
 * machine, 3 to 5 s with other tests running beside. Such a body is now refused unread
 * (src/jsonrpc/body-shape.ts) and other clients are answered as usual meanwhile. The bound is a
 * quarter of what `JSON.parse` of that body takes in this process just before (so it scales with the
 * machine and its load, as the stall did); evmux runs in a process of its own, so that the clients'
 * clock runs on while its event loop is held.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { SHAPE_SCAN_FROM } from '../../src/jsonrpc/body-shape.js';
import { CliProcess } from '../support/cli-process.js';
import { waitUntil } from '../support/stream-recorder.js';
import { Probe } from '../support/ws-probe.js';

const DEEP = '['.repeat(5 * 1024 * 1024 - 100);
const REFUSAL = /^the request nests deeper than 34 levels \(a batch, a request object, params 32 deep: the most evmux forwards\); it was not read$/;

let devnet: LockstepDevnet | undefined;
let evmux: CliProcess | undefined;
let httpUrl = '';
let wsUrl = '';
let stallBoundMs = 0;

before(async () => {
  devnet = await LockstepDevnet.start({ nodes: 1, blockTimeMs: 0 });
  evmux = new CliProcess(['--port', '0', '--upstream', `a=${devnet.nodes[0]!.wsUrl}`]);
  const port = await evmux.port();
  httpUrl = `http://127.0.0.1:${port}/`;
  wsUrl = `ws://127.0.0.1:${port}/`;
  await waitUntil('the node usable', async () => (await fetch(`${httpUrl}readyz`)).status === 200, 10_000);
  // The first large body grows both processes' heaps (100 to 500 ms on a busy machine): not measured.
  const flat = await post(`{"jsonrpc":"2.0","id":1,"method":"admin_nodeInfo","params":["${'0'.repeat(DEEP.length - 100)}"]}`);
  assert.equal((flat['error'] as { code?: unknown } | undefined)?.code, -32601, JSON.stringify(flat));
  const started = performance.now();
  assert.throws(() => JSON.parse(DEEP), SyntaxError);
  stallBoundMs = (performance.now() - started) / 4;
});

after(async () => {
  evmux?.child.kill('SIGTERM');
  await evmux?.exit(5000);
  await devnet?.close();
});

async function post(body: string): Promise<Record<string, unknown>> {
  const response = await fetch(httpUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(20_000) });
  return (await response.json()) as Record<string, unknown>;
}

function assertRefusedUnread(answer: unknown, where: string): void {
  const { id, error } = answer as { id?: unknown; error?: { code?: unknown; message?: unknown } };
  assert.equal(id, null, `${where}: ${JSON.stringify(answer)}`);
  assert.equal(error?.code, -32602, `${where}: ${JSON.stringify(answer)}`);
  assert.match(String(error?.message), REFUSAL, where);
}

/**
 * How long the slowest of another client's eth_chainId calls took while `deliver` sent a body and
 * got its answer (one call every 20 ms, from 200 ms before to 200 ms after), with that answer and
 * how long it took (5 MiB take 100 to 900 ms to upload on a busy machine, flat or deep).
 */
async function worstCallDuring(deliver: () => Promise<unknown>): Promise<{ worstMs: number; answer: unknown; answerMs: number }> {
  let worstMs = 0;
  let stop = false;
  const victim = (async () => {
    while (!stop) {
      const started = performance.now();
      const answer = await post('{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}');
      assert.equal(answer['result'], '0x7a69', JSON.stringify(answer));
      worstMs = Math.max(worstMs, performance.now() - started);
      await sleep(20);
    }
  })();
  try {
    await sleep(200);
    worstMs = 0; // the first calls warm up (a connection, compiling): 60 to 200 ms
    const sent = performance.now();
    const answer = await deliver();
    const answerMs = performance.now() - sent;
    await sleep(200);
    return { worstMs: Math.round(worstMs), answer, answerMs: Math.round(answerMs) };
  } finally {
    stop = true;
    await victim;
  }
}

test('a 5 MiB body of [ over HTTP is refused unread, and another client is answered meanwhile', async () => {
  const { worstMs, answer, answerMs } = await worstCallDuring(() => post(DEEP));
  assert.ok(worstMs < stallBoundMs, `another client's call waited ${worstMs} ms, over ${Math.round(stallBoundMs)} ms (the deep body was answered after ${answerMs} ms)`);
  assertRefusedUnread(answer, 'HTTP');
});

test('a 5 MiB frame of [ over WebSocket is refused unread, the connection stays usable, and another client is answered meanwhile', async (t: TestContext) => {
  const probe = await Probe.open(wsUrl, t);
  const { worstMs, answer, answerMs } = await worstCallDuring(async () => {
    probe.send(DEEP);
    return (await probe.waitFor((frame) => frame.json !== undefined && 'error' in frame.json, 10_000)).json;
  });
  assert.ok(worstMs < stallBoundMs, `another client's call waited ${worstMs} ms, over ${Math.round(stallBoundMs)} ms (the deep frame was answered after ${answerMs} ms)`);
  assertRefusedUnread(answer, 'WebSocket');
  assert.equal(await probe.call('eth_chainId'), '0x7a69');
});

test('bodies nested as deep but shorter than SHAPE_SCAN_FROM are read, and refused under their id as before', async () => {
  const nested = `${'['.repeat(39)}${']'.repeat(39)}`;
  const body = (length: number): string => {
    const head = `{"jsonrpc":"2.0","id":7,"method":"eth_call","params":[${nested},"`;
    const tail = '"]}';
    return head + '0'.repeat(length - head.length - tail.length) + tail;
  };
  const short = await post(body(SHAPE_SCAN_FROM - 1));
  assert.equal(short['id'], 7, JSON.stringify(short));
  assert.match(String((short['error'] as { message?: unknown } | undefined)?.message), /^eth_call: params nest deeper than 32 levels/);
  assertRefusedUnread(await post(body(SHAPE_SCAN_FROM)), 'at SHAPE_SCAN_FROM');
  // Objects nest as arrays do; a batch of calls at the most evmux forwards is read.
  assertRefusedUnread(await post(`{"a":`.repeat(SHAPE_SCAN_FROM)), 'nested objects');
  const call = `{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[${'['.repeat(31)}${']'.repeat(31)}]}`;
  const batch = (await post(`[${Array.from({ length: Math.ceil(SHAPE_SCAN_FROM / call.length) }, () => call).join(',')}]`)) as unknown;
  assert.ok(Array.isArray(batch), JSON.stringify(batch));
  assert.doesNotMatch(JSON.stringify(batch), /nests deeper/);
});

test('a 5 MiB body of small values over HTTP ([[],[],…]) is refused unread, and another client is answered meanwhile', async () => {
  const mass = `[${'[],'.repeat((5 * 1024 * 1024 - 100) / 3)}[]]`;
  const started = performance.now();
  JSON.parse(mass);
  const boundMs = (performance.now() - started) / 4;
  const { worstMs, answer, answerMs } = await worstCallDuring(() => post(mass));
  assert.ok(worstMs < boundMs, `another client's call waited ${worstMs} ms, over ${Math.round(boundMs)} ms (the body was answered after ${answerMs} ms)`);
  const { id, error } = answer as { id?: unknown; error?: { code?: unknown; message?: unknown } };
  assert.deepEqual([id, error?.code, error?.message], [null, -32600, 'the request holds more than 50000 arrays and objects, more than any request evmux forwards; it was not read']);
});
