/**
 * Bad input, one table over WebSocket and HTTP: every JSON-RPC error code and every limit evmux
 * enforces, each answered with the caller's id (where one was given) and a message naming what was
 * wrong. After each row the connection (where it stays open) still answers a good call and another
 * client is unaffected.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { TestContext } from 'node:test';
import { WebSocket } from 'ws';
import { FakeNode } from '../support/fake-node.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { sumSamples } from '../support/prom-text.js';
import { Probe, isObject } from '../support/ws-probe.js';
import { attemptUpgrade, isOpen } from '../support/ws-upgrade.js';

const LIMITS = {
  maxRequestBytes: 4096,
  maxBatchSize: 6,
  maxConnectionsPerIp: 6,
  maxInFlightPerConnection: 5,
  maxSubscriptionsPerConnection: 2,
  maxSendBufferBytes: 65_536,
  maxFilterAddresses: 3,
  maxFilterTopicsPerPosition: 2,
};
const ADDRESSES = ['0x01', '0x02', '0x03', '0x04'].map((tail) => `0x${tail.slice(2).padStart(40, '0')}`);
const TOPICS = ['0x01', '0x02', '0x03'].map((tail) => `0x${tail.slice(2).padStart(64, '0')}`);
/** eth_getCode answers after this long, so calls of one batch are in flight together. */
const SLOW_MS = 200;

let node: FakeNode;
let evmux: TestGateway;

before(async () => {
  node = await FakeNode.start({ seed: 'bad-input' });
  node.handle('eth_getCode', async () => {
    await new Promise((resolve) => setTimeout(resolve, SLOW_MS));
    return '0x';
  });
  evmux = await startGateway([node.url], { limits: LIMITS });
});

after(async () => {
  await evmux?.close();
  await node?.close();
});

type Id = string | number | null;
interface ErrorExpect {
  id: Id;
  code: number;
  message: RegExp;
}
type Outcome =
  | { error: ErrorExpect }
  /** per item, in request order: `true` = a result */
  | { batch: Array<{ id: Id; result: true } | ErrorExpect> }
  /** a notification: no response at all (HTTP: 204, empty body) */
  | { nothing: true }
  | { wsClose: number; reason: RegExp }
  | { httpStatus: number; error: ErrorExpect }
  /** the WebSocket upgrade is refused with this HTTP status and JSON-RPC error body */
  | { upgradeRefused: number; error: ErrorExpect };

interface Row {
  name: string;
  /** the frame (WS) or body (HTTP); a Buffer goes out as a binary frame */
  frame: string | Buffer;
  ws?: Outcome;
  http?: Outcome;
  /** WS frames sent (and answered) first on the same connection */
  wsBefore?: unknown[];
}

const request = (id: Id | undefined, method: string, params?: unknown): string =>
  JSON.stringify({ jsonrpc: '2.0', ...(id !== undefined && { id }), method, ...(params !== undefined && { params }) });
const error = (id: Id, code: number, message: RegExp): { error: ErrorExpect } => ({ error: { id, code, message } });
const both = (outcome: Outcome): Pick<Row, 'ws' | 'http'> => ({ ws: outcome, http: outcome });
const overHttp = /eth_subscribe is only available over WebSocket/;

const refused = ['admin_nodeInfo', 'debug_traceTransaction', 'personal_sign', 'miner_start', 'txpool_content', 'anvil_mine', 'evm_mine', 'hardhat_mine'];

const rows: Row[] = [
  // -32700
  { name: 'truncated JSON', frame: '{"jsonrpc":"2.0","id":1,"method":', ...both(error(null, -32700, /parse error/)) },
  { name: 'not JSON at all', frame: 'hello evmux', ...both(error(null, -32700, /parse error/)) },
  // -32600
  { name: 'not an object', frame: '42', ...both(error(null, -32600, /expected a JSON-RPC 2.0 request object/)) },
  { name: 'wrong jsonrpc version', frame: '{"jsonrpc":"1.0","id":7,"method":"eth_chainId"}', ...both(error(7, -32600, /"jsonrpc" must be "2.0"/)) },
  { name: 'missing method', frame: '{"jsonrpc":"2.0","id":"m"}', ...both(error('m', -32600, /"method" must be a non-empty string/)) },
  { name: 'empty method', frame: request(8, ''), ...both(error(8, -32600, /"method" must be a non-empty string/)) },
  { name: 'id of a bad type', frame: '{"jsonrpc":"2.0","id":{"a":1},"method":"eth_chainId"}', ...both(error(null, -32600, /"id" must be a string, number or null/)) },
  { name: 'params of a bad type', frame: request(9, 'eth_chainId', 5), ...both(error(9, -32600, /"params" must be an array or an object/)) },
  { name: 'empty batch', frame: '[]', ...both(error(null, -32600, /empty batch/)) },
  {
    name: 'batch over maxBatchSize',
    frame: JSON.stringify(Array.from({ length: 7 }, (_, i) => JSON.parse(request(i, 'eth_chainId')) as unknown)),
    // An array, as every batch is answered, of one error under the first call's id (as geth answers).
    ...both({ batch: [{ id: 0, code: -32600, message: /batch of 7 exceeds the limit of 6 \(limits\.maxBatchSize\)/ }] }),
  },
  // -32601
  { name: 'unknown method', frame: request(10, 'foo_bar'), ...both(error(10, -32601, /method foo_bar does not exist/)) },
  { name: 'a method name that is no identifier', frame: '{"jsonrpc":"2.0","id":24,"method":"eth_\\ud800","params":[]}', ...both(error(24, -32601, /^the method eth_\ud800 does not exist\/is not available$/)) },
  ...refused.map((method, i): Row => ({
    name: `refused namespace ${method.split('_')[0]}_`,
    frame: request(`r${i}`, method, []),
    ...both(error(`r${i}`, -32601, new RegExp(`^the method ${method} does not exist/is not available: not allowed on this gateway$`))),
  })),
  { name: 'eth_subscribe over HTTP', frame: request(11, 'eth_subscribe', ['newHeads']), http: error(11, -32601, overHttp) },
  // -32602
  {
    name: 'eth_subscribe of an unknown kind',
    frame: request(12, 'eth_subscribe', ['fooHeads']),
    ws: error(12, -32602, /unsupported subscription kind "fooHeads"/),
    http: error(12, -32601, overHttp),
  },
  {
    name: 'eth_subscribe logs with a bad address',
    frame: request(13, 'eth_subscribe', ['logs', { address: '0x1234' }]),
    ws: error(13, -32602, /address.* must be a 20-byte 0x-prefixed hex string, got "0x1234"/),
    http: error(13, -32601, overHttp),
  },
  {
    name: 'eth_subscribe logs with a bad topic',
    frame: request(14, 'eth_subscribe', ['logs', { topics: ['0xabc'] }]),
    ws: error(14, -32602, /topics\[0\].* must be a 32-byte 0x-prefixed hex string, got "0xabc"/),
    http: error(14, -32601, overHttp),
  },
  {
    name: 'eth_subscribe logs with an unknown filter key',
    frame: request(15, 'eth_subscribe', ['logs', { blockHash: `0x${'11'.repeat(32)}` }]),
    ws: error(15, -32602, /unsupported logs filter key "blockHash"/),
    http: error(15, -32601, overHttp),
  },
  ...([['no params', undefined, /got no params$/], ['a number', [7], /got \[7\]$/], ['two ids', ['0x1', '0x2'], /got \["0x1","0x2"\]$/]] as const).map(
    ([what, params, got], i): Row => ({
      name: `eth_unsubscribe with ${what}`,
      frame: request(`u${i}`, 'eth_unsubscribe', params),
      ws: error(`u${i}`, -32602, new RegExp(`^eth_unsubscribe expects \\[subscriptionId\\], the string an eth_subscribe answered with; ${got.source}`)),
      http: error(`u${i}`, -32601, /eth_unsubscribe is only available over WebSocket/),
    }),
  ),
  { name: 'malformed filter id', frame: request(16, 'eth_getFilterChanges', ['0xzz']), ...both(error(16, -32602, /invalid filter id/)) },
  // As a node answers an id it does not know: viem makes its filter again on -32000.
  { name: 'filter id of no upstream', frame: request(17, 'eth_getFilterChanges', ['0x07ab']), ...both(error(17, -32000, /^filter not found$/)) },
  // evmux keeps a filter's params while it lives, and a node matches each log against every entry.
  {
    name: 'eth_getLogs over limits.maxFilterAddresses',
    frame: request(20, 'eth_getLogs', [{ address: ADDRESSES }]),
    ...both(error(20, -32602, /^eth_getLogs: filter has 4 addresses; the limit is 3 \(limits\.maxFilterAddresses\)$/)),
  },
  {
    name: 'eth_newFilter over limits.maxFilterTopicsPerPosition',
    frame: request(21, 'eth_newFilter', [{ topics: [null, TOPICS] }]),
    ...both(error(21, -32602, /^eth_newFilter: filter topics\[1\] has 3 alternatives; the limit is 2 \(limits\.maxFilterTopicsPerPosition\)$/)),
  },
  { name: 'raw transaction not hex', frame: request(18, 'eth_sendRawTransaction', ['0xabc']), ...both(error(18, -32602, /eth_sendRawTransaction expects one 0x-prefixed hex string/)) },
  { name: 'params null, taken for none as nodes take it', frame: '[{"jsonrpc":"2.0","id":30,"method":"eth_blockNumber","params":null}]', ...both({ batch: [{ id: 30, result: true }] }) },
  { name: 'plain call with object params', frame: request(19, 'eth_getBalance', { a: 1 }), ...both(error(19, -32602, /eth_getBalance: params must be an array/)) },
  // -32005 limits
  {
    name: 'a batch past the in-flight calls per connection',
    // Six calls of one batch, five in flight at most: the sixth waits for a slot, and is answered.
    frame: JSON.stringify([1, 2, 3, 4, 5, 6].map((id) => JSON.parse(request(id, 'eth_getCode', ['0x0000000000000000000000000000000000000001', 'latest'])) as unknown)),
    ...both({ batch: [1, 2, 3, 4, 5, 6].map((id) => ({ id, result: true as const })) }),
  },
  {
    name: 'subscriptions per connection',
    wsBefore: [{ jsonrpc: '2.0', id: 'a', method: 'eth_subscribe', params: ['newHeads'] }, { jsonrpc: '2.0', id: 'b', method: 'eth_subscribe', params: ['newHeads'] }],
    frame: request(20, 'eth_subscribe', ['newHeads']),
    ws: error(20, -32005, /subscription limit reached: at most 2 per connection \(limits\.maxSubscriptionsPerConnection\)/),
    http: error(20, -32601, overHttp),
  },
  {
    name: 'frame over maxRequestBytes',
    frame: request(21, 'eth_chainId', ['x'.repeat(5000)]),
    ws: { wsClose: 1009, reason: /exceeds the 4096-byte limit/ },
    http: { httpStatus: 413, error: { id: null, code: -32600, message: /request body exceeds the 4096-byte limit \(limits.maxRequestBytes\)/ } },
  },
  {
    // Past twice the limit uWebSockets.js cuts the connection itself, unread.
    name: 'frame over twice maxRequestBytes',
    frame: request(24, 'eth_chainId', ['x'.repeat(9000)]),
    ws: { wsClose: 1006, reason: /^$/ },
  },
  {
    name: 'connections per IP',
    frame: request(22, 'eth_chainId'),
    ws: { upgradeRefused: 429, error: { id: null, code: -32005, message: /too many connections from 127\.0\.0\.1: at most 6 \(limits\.maxConnectionsPerIp\)/ } },
  },
  { name: 'binary frame', frame: Buffer.from(request(23, 'eth_chainId')), ws: { wsClose: 1003, reason: /binary frames are not supported/ } },
  // notifications and mixed batches
  { name: 'notification', frame: request(undefined, 'eth_chainId'), ...both({ nothing: true }) },
  { name: 'notification of a refused method', frame: request(undefined, 'admin_nodeInfo'), ...both({ nothing: true }) },
  {
    name: 'batch mixing good and bad items',
    frame: JSON.stringify([
      { jsonrpc: '2.0', id: 1, method: 'eth_chainId' },
      { jsonrpc: '2.0', id: 2, method: 'debug_traceCall', params: [] },
      { jsonrpc: '2.0', method: 'eth_chainId' },
      42,
      { jsonrpc: '2.0', id: 3, method: 'eth_getBalance', params: { bad: true } },
      { jsonrpc: '2.0', id: 'last', method: 'eth_blockNumber' },
    ]),
    ...both({
      batch: [
        { id: 1, result: true },
        { id: 2, code: -32601, message: /^the method debug_traceCall does not exist\/is not available: not allowed on this gateway$/ },
        { id: null, code: -32600, message: /expected a JSON-RPC 2.0 request object/ },
        { id: 3, code: -32602, message: /params must be an array/ },
        { id: 'last', result: true },
      ],
    }),
  },
];

function assertError(actual: unknown, expected: ErrorExpect, where: string): void {
  assert.ok(isObject(actual), `${where}: not an object: ${JSON.stringify(actual)}`);
  assert.equal(actual['jsonrpc'], '2.0', where);
  assert.deepEqual(actual['id'], expected.id, `${where}: id`);
  const rpcError = actual['error'] as { code?: unknown; message?: unknown } | undefined;
  assert.ok(isObject(rpcError), `${where}: no error in ${JSON.stringify(actual)}`);
  assert.equal(rpcError['code'], expected.code, `${where}: code in ${JSON.stringify(actual)}`);
  assert.match(String(rpcError['message']), expected.message, `${where}: message`);
}

function assertReply(body: string, outcome: Outcome, where: string): void {
  const reply = JSON.parse(body) as unknown;
  if ('error' in outcome) {
    assertError(reply, outcome.error, where);
  } else if ('batch' in outcome) {
    assert.ok(Array.isArray(reply), `${where}: expected a batch reply, got ${body}`);
    assert.equal(reply.length, outcome.batch.length, `${where}: items in ${body}`);
    outcome.batch.forEach((item, i) => {
      const got = reply[i] as Record<string, unknown>;
      if ('result' in item) {
        assert.deepEqual(got['id'], item.id, `${where}: item ${i} id`);
        assert.ok('result' in got, `${where}: item ${i} is not a result: ${JSON.stringify(got)}`);
      } else {
        assertError(got, item, `${where}: item ${i}`);
      }
    });
  } else {
    assert.fail(`${where}: unexpected reply ${body}`);
  }
}

async function post(body: string): Promise<{ status: number; text: string }> {
  const response = await fetch(evmux.httpUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  // Every answer, refusals included, can be read by a browser dapp.
  assert.equal(response.headers.get('access-control-allow-origin'), '*', `CORS header of the ${response.status} answer to ${body.slice(0, 60)}`);
  return { status: response.status, text: await response.text() };
}

async function goodHttpCall(where: string): Promise<void> {
  const { status, text } = await post(request('good', 'eth_chainId'));
  assert.equal(status, 200, where);
  assert.deepEqual(JSON.parse(text), { jsonrpc: '2.0', id: 'good', result: '0x7a69' }, where);
}

async function goodWsCall(probe: Probe, where: string): Promise<void> {
  const reply = await probe.request('eth_chainId', [], 2_000);
  assert.equal(reply['result'], '0x7a69', `${where}: ${JSON.stringify(reply)}`);
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}

/** Refused upgrade: status and body of the HTTP answer. */
async function refusedUpgrade(): Promise<{ status: number; body: string }> {
  const outcome = await attemptUpgrade(evmux.wsUrl);
  if (isOpen(outcome)) {
    outcome.open.terminate();
    throw new Error('upgrade accepted past the per-IP limit');
  }
  if (!('status' in outcome)) throw new Error(`upgrade failed: ${outcome.failed}`);
  return outcome;
}

async function runWs(t: TestContext, row: Row, outcome: Outcome): Promise<void> {
  const where = `ws: ${row.name}`;
  if ('upgradeRefused' in outcome) {
    // The bystander holds one connection; fill up to the limit, then one more is refused.
    const held = await Promise.all(Array.from({ length: LIMITS.maxConnectionsPerIp - 1 }, () => Probe.open(evmux.wsUrl, t)));
    const { status, body } = await refusedUpgrade();
    assert.equal(status, outcome.upgradeRefused, where);
    assertError(JSON.parse(body), outcome.error, where);
    // The connections already open are not affected, and a freed slot can be used again.
    await goodWsCall(held[0]!, where);
    const gone = closed(held[0]!.ws);
    held[0]!.ws.close();
    await gone;
    for (const probe of held.slice(1)) probe.ws.terminate();
    await new Promise((resolve) => setTimeout(resolve, 50));
    await goodWsCall(await Probe.open(evmux.wsUrl, t), `${where}: after a slot was freed`);
    return;
  }
  const probe = await Probe.open(evmux.wsUrl, t);
  for (const frame of row.wsBefore ?? []) {
    probe.send(frame);
    const reply = await probe.waitFor((f) => isObject(f.json) && f.json['id'] === (frame as { id: unknown }).id, 2_000);
    assert.ok(isObject(reply.json) && 'result' in reply.json, `${where}: setup frame failed: ${reply.raw}`);
  }
  const closing = closed(probe.ws);
  const disconnects = (reason: string): Promise<number> => evmux.metric('evmux_client_disconnects_total', { reason }).then((value) => value ?? 0);
  const reasonLabel = 'wsClose' in outcome ? (outcome.wsClose === 1003 ? 'protocol' : 'limit') : '';
  const before = 'wsClose' in outcome ? await disconnects(reasonLabel) : 0;
  probe.ws.send(row.frame, { binary: Buffer.isBuffer(row.frame) });
  if ('wsClose' in outcome) {
    const { code, reason } = await closing;
    assert.equal(code, outcome.wsClose, where);
    assert.match(reason, outcome.reason, where);
    assert.equal(await disconnects(reasonLabel), before + 1, `${where}: counted as a ${reasonLabel} disconnect`);
    return;
  }
  const isReply = (f: { json: unknown }): boolean => !(isObject(f.json) && f.json['method'] === 'eth_subscription');
  if ('nothing' in outcome) {
    await probe.expectNone(isReply, 300);
  } else {
    const frame = await probe.waitFor(isReply, 2_000);
    assertReply(frame.raw, outcome, where);
  }
  await goodWsCall(probe, `${where}: same connection afterwards`);
  // Free its slot of the per-IP connection limit before the next row.
  probe.ws.close();
  await closing;
}

async function runHttp(row: Row, outcome: Outcome): Promise<void> {
  const where = `http: ${row.name}`;
  const { status, text } = await post(row.frame.toString());
  if ('httpStatus' in outcome) {
    assert.equal(status, outcome.httpStatus, where);
    assertError(JSON.parse(text), outcome.error, where);
  } else if ('nothing' in outcome) {
    assert.equal(status, 204, where);
    assert.equal(text, '', where);
  } else {
    assert.equal(status, 200, `${where}: ${text}`);
    assertReply(text, outcome, where);
  }
  await goodHttpCall(`${where}: afterwards`);
}

test('bad input over WebSocket and HTTP: right code, caller id, clear message; connection and other clients unaffected', async (t) => {
  const bystander = await Probe.open(evmux.wsUrl, t);
  const errorCodes = new Set<number>();
  for (const row of rows) {
    for (const transport of ['ws', 'http'] as const) {
      const outcome = row[transport];
      if (outcome === undefined) continue;
      await (transport === 'ws' ? runWs(t, row, outcome) : runHttp(row, outcome));
      await goodWsCall(bystander, `bystander after ${transport}: ${row.name}`);
      if ('error' in outcome) errorCodes.add(outcome.error.code);
    }
  }
  // The table covers every code evmux itself returns for bad input.
  assert.deepEqual([...errorCodes].sort(), [-32700, -32602, -32601, -32600, -32005, -32000].sort());
  // The one body over the size limit (413) is counted, as WebSocket frames over it are.
  assert.equal(sumSamples((await evmux.get('/metrics')).body, 'evmux_client_rejections_total', { reason: 'body_size' }), 1);
  // Nothing was sent to the bystander but its own answers.
  await bystander.expectNone(() => true, 100);
});

test('subscriptions sent together in one batch are held to the per-connection limit', async (t) => {
  const probe = await Probe.open(evmux.wsUrl, t);
  probe.send([1, 2, 3, 4].map((id) => ({ jsonrpc: '2.0', id, method: 'eth_subscribe', params: ['newHeads'] })));
  const reply = (await probe.waitFor(() => true, 2_000)).json as Array<Record<string, unknown>>;
  assert.deepEqual(reply.map((item) => ('result' in item ? 'ok' : (item['error'] as { code: number }).code)), ['ok', 'ok', -32005, -32005]);
});

test('a client that sends pings and never reads is cut off at its send buffer cap with 1013, as a slow consumer', async (t) => {
  const bystander = await Probe.open(evmux.wsUrl, t);
  const pinger = new WebSocket(evmux.wsUrl);
  t.after(() => pinger.terminate());
  await new Promise((resolve) => pinger.once('open', resolve));
  const closed = new Promise<number>((resolve) => pinger.once('close', resolve));
  const socket = (pinger as unknown as { _socket: { pause(): void; resume(): void } })._socket;
  socket.pause();
  const slowConsumers = async (): Promise<number> => sumSamples((await evmux.get('/metrics')).body, 'evmux_client_disconnects_total', { reason: 'slow_consumer' });
  const before = await slowConsumers();
  // Each pong is a 127-byte frame evmux queues without sending anything of its own; the kernel's
  // buffers take several MB of them first.
  const payload = Buffer.alloc(125, 7);
  let sent = 0;
  while ((await slowConsumers()) === before) {
    assert.ok(sent < 2_000_000, `still connected after ${sent} pings (${Math.round((sent * 127) / 2 ** 20)} MiB of pongs)`);
    for (let i = 0; i < 20_000; i++) pinger.ping(payload);
    sent += 20_000;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  socket.resume();
  assert.equal(await closed, 1013);
  await goodWsCall(bystander, 'bystander after the ping flood');
});

test('an HTTP body with bytes that are not UTF-8 reaches the node as valid UTF-8, each such byte a U+FFFD', async () => {
  node.handle('eth_echoParams', (params) => params);
  for (const layout of ['{"jsonrpc":"2.0","id":1,"method":"eth_echoParams","params":["a", "?"]}', '{"method":"eth_echoParams","params":["a","?"],"id":1,"jsonrpc":"2.0"}']) {
    const bytes = Buffer.from(layout, 'latin1');
    bytes[bytes.lastIndexOf('?')] = 0xff;
    const response = await fetch(evmux.httpUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: bytes });
    assert.deepEqual(await response.json(), { jsonrpc: '2.0', id: 1, result: ['a', '\uFFFD'] }, layout);
  }
});

test('a filter id of no upstream is answered as a node answers an id it does not know', async () => {
  const call = async (method: string): Promise<unknown> => {
    const response = await fetch(evmux.httpUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: request(1, method, ['0x07ab']) });
    return response.json();
  };
  assert.deepEqual(await call('eth_getFilterLogs'), { jsonrpc: '2.0', id: 1, error: { code: -32000, message: 'filter not found' } });
  assert.deepEqual(await call('eth_uninstallFilter'), { jsonrpc: '2.0', id: 1, result: false });
});
