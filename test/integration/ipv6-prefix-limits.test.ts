/**
 * limits.ipv6PrefixLength: an IPv6 host is given a whole prefix and may take any address in it, so
 * every per-IP limit (connections, distinct logs filters, installed filters) counts an IPv6 client
 * by its first 64 bits unless set otherwise, and so does an IP session key (one request rate for the
 * prefix). The clients here are named by a trusted proxy's
 * X-Forwarded-For, as behind an ingress.
 */
import assert from 'node:assert/strict';
import { after, before, test, type TestContext } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { Probe } from '../support/ws-probe.js';
import { attemptUpgrade, isOpen } from '../support/ws-upgrade.js';

let devnet: LockstepDevnet;

before(async () => {
  devnet = await LockstepDevnet.start({ nodes: 1, blockTimeMs: 0 });
});

after(() => devnet?.close());

async function gateway(t: TestContext, ipv6PrefixLength?: number, more: Record<string, number> = {}): Promise<TestGateway> {
  const limits = { maxConnectionsPerIp: 2, maxLogFiltersPerIp: 2, maxInstalledFiltersPerIp: 2, ...(ipv6PrefixLength !== undefined && { ipv6PrefixLength }), ...more };
  const evmux = await startGateway([devnet.nodes[0]!.wsUrl], { proxy: { trusted: ['127.0.0.1'] }, limits }, { logLevel: 'warn' });
  t.after(() => evmux.close());
  return evmux;
}

/** An upgrade from `client`: open, or the status and body it was refused with. */
async function connect(t: TestContext, evmux: TestGateway, client: string): Promise<'open' | string> {
  const outcome = await attemptUpgrade(evmux.wsUrl, { headers: { 'X-Forwarded-For': client } });
  if (isOpen(outcome)) {
    t.after(() => outcome.open.terminate());
    return 'open';
  }
  if ('status' in outcome) return `${outcome.status} ${outcome.body}`;
  throw new Error(outcome.failed);
}

type Answer = { result?: string; error?: { code: number; message: string } };

async function httpCall(evmux: TestGateway, client: string, method: string): Promise<Answer> {
  const response = await fetch(evmux.httpUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': client },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params: [] }),
  });
  return (await response.json()) as Answer;
}

const newBlockFilter = (evmux: TestGateway, client: string): Promise<Answer> => httpCall(evmux, client, 'eth_newBlockFilter');

test('connections: addresses of one /64 count as one client, another /64 is another', async (t) => {
  const evmux = await gateway(t);
  assert.equal(await connect(t, evmux, '2001:db8:1:2::1'), 'open');
  assert.equal(await connect(t, evmux, '2001:db8:1:2:ffff:ffff:ffff:ffff'), 'open');
  const third = await connect(t, evmux, '2001:DB8:1:2:0:0:0:3');
  assert.match(third, /^429 .*too many connections from 2001:db8:1:2::\/64: at most 2 \(limits\.maxConnectionsPerIp\)/);
  assert.equal(await connect(t, evmux, '2001:db8:1:3::1'), 'open', 'the next /64 is a client of its own');
  assert.equal(await connect(t, evmux, '203.0.113.5'), 'open', 'an IPv4 client counts by its address');
  // IPv4 clients through NAT64 each count as their IPv4 address, not as one 64:ff9b::/64.
  for (const client of ['64:ff9b::c000:201', '64:ff9b::c000:201', '64:ff9b::c633:6407', '64:ff9b::cb00:7109']) assert.equal(await connect(t, evmux, client), 'open', client);
  assert.match(await connect(t, evmux, '64:ff9b::c000:201'), /^429 .*too many connections from 192\.0\.2\.1: at most 2/);
  assert.equal(await evmux.metric('evmux_client_rejections_total', { reason: 'connections_per_ip' }), 2);
});

test('connections: a closed connection gives its prefix room again', async (t) => {
  const evmux = await gateway(t);
  const first = await attemptUpgrade(evmux.wsUrl, { headers: { 'X-Forwarded-For': '2001:db8::a' } });
  assert.ok(isOpen(first));
  assert.equal(await connect(t, evmux, '2001:db8::b'), 'open');
  assert.match(await connect(t, evmux, '2001:db8::c'), /^429 /);
  first.open.close();
  await new Promise((resolve) => first.open.once('close', resolve));
  // The gateway hears of the close a moment after the client.
  let again = '';
  for (let i = 0; i < 50 && again !== 'open'; i++) {
    again = await connect(t, evmux, '2001:db8::c');
    if (again !== 'open') await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.equal(again, 'open');
});

test('installed filters: one /64 holds limits.maxInstalledFiltersPerIp, whatever its addresses', async (t) => {
  const evmux = await gateway(t);
  assert.equal(typeof (await newBlockFilter(evmux, '2001:db8:5:6::1')).result, 'string');
  assert.equal(typeof (await newBlockFilter(evmux, '2001:db8:5:6::2')).result, 'string');
  const refused = await newBlockFilter(evmux, '2001:db8:5:6::3');
  assert.equal(refused.error?.code, -32005, JSON.stringify(refused));
  assert.match(refused.error.message, /too many installed filters from 2001:db8:5:6::\/64: at most 2 \(limits\.maxInstalledFiltersPerIp\)/);
  assert.equal(typeof (await newBlockFilter(evmux, '2001:db8:5:7::1')).result, 'string', 'another /64');
});

test('logs filters: one /64 holds limits.maxLogFiltersPerIp distinct filters over its connections', async (t) => {
  const evmux = await gateway(t);
  const logsOf = (topic: string): unknown[] => ['logs', { address: devnet.emitterAddress, topics: [topic] }];
  const topic = (n: number): string => `0x${n.toString(16).padStart(64, '0')}`;
  const a = await Probe.open(evmux.wsUrl, t, { headers: { 'X-Forwarded-For': '2001:db8:9:9::1' } });
  const b = await Probe.open(evmux.wsUrl, t, { headers: { 'X-Forwarded-For': '2001:db8:9:9::2' } });
  assert.equal(typeof (await a.request('eth_subscribe', logsOf(topic(1))))['result'], 'string');
  assert.equal(typeof (await b.request('eth_subscribe', logsOf(topic(2))))['result'], 'string');
  assert.equal(typeof (await b.request('eth_subscribe', logsOf(topic(1))))['result'], 'string', 'a filter the prefix holds costs nothing');
  const refused = (await b.request('eth_subscribe', logsOf(topic(3))))['error'] as { code: number; message: string } | undefined;
  assert.equal(refused?.code, -32005);
  assert.match(refused.message, /too many distinct logs filters from 2001:db8:9:9::\/64: at most 2 \(limits\.maxLogFiltersPerIp\)/);
  const other = await Probe.open(evmux.wsUrl, t, { headers: { 'X-Forwarded-For': '2001:db8:9:a::1' } });
  assert.equal(typeof (await other.request('eth_subscribe', logsOf(topic(3))))['result'], 'string', 'another /64');
});

test('ipv6PrefixLength 128 counts each IPv6 address on its own; 48 counts a whole site', async (t) => {
  const each = await gateway(t, 128);
  for (const client of ['2001:db8::1', '2001:db8::1', '2001:db8::2', '2001:db8::2']) assert.equal(await connect(t, each, client), 'open');
  assert.match(await connect(t, each, '2001:db8::1'), /^429 .*too many connections from 2001:db8::1: at most 2/);
  const site = await gateway(t, 48);
  assert.equal(await connect(t, site, '2001:db8:7:1::1'), 'open');
  assert.equal(await connect(t, site, '2001:db8:7:ffff::1'), 'open');
  assert.match(await connect(t, site, '2001:db8:7:2::1'), /^429 .*too many connections from 2001:db8:7::\/48: at most 2/);
});

test('requests per second: with an ip session key, a /64 has one budget', async (t) => {
  const evmux = await gateway(t, undefined, { requestsPerSecondPerClient: 0.1, requestBurstPerClient: 2 });
  assert.equal(typeof (await httpCall(evmux, '2001:db8:c:d::1', 'eth_blockNumber')).result, 'string');
  assert.equal(typeof (await httpCall(evmux, '2001:db8:c:d::2', 'eth_blockNumber')).result, 'string');
  const limited = await httpCall(evmux, '2001:db8:c:d::3', 'eth_blockNumber');
  assert.equal(limited.error?.code, -32005, JSON.stringify(limited));
  assert.match(limited.error.message, /rate limit/);
  assert.equal(typeof (await httpCall(evmux, '2001:db8:c:e::1', 'eth_blockNumber')).result, 'string', 'another /64 has its own');
});
