import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildConfig, parseUpstreamFlag } from '../../src/config/load.js';
import { ConfigError, parseConfig } from '../../src/config/schema.js';

const ok = { upstreams: [{ url: 'ws://127.0.0.1:8545' }] };

function message(raw: unknown): string {
  try {
    parseConfig(raw);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.message;
  }
  assert.fail('expected a ConfigError');
}

test('defaults fill every setting', () => {
  const config = parseConfig(ok);
  assert.equal(config.port, 8547);
  assert.equal(config.host, '127.0.0.1');
  assert.equal(config.balancer, 'least-connections');
  assert.equal(config.upstreams[0]!.name, 'u0');
  assert.equal(config.upstreams[0]!.connections, 1);
  assert.equal(config.subscriptions.gracePeriodMs, 10_000);
  assert.deepEqual(config.methods.allow, ['eth_*', 'net_*', 'web3_*']);
});

test('errors name the key and the problem', () => {
  assert.match(message({ ...ok, prot: 1 }), /^prot: unknown key$/);
  assert.match(message({ ...ok, limits: { maxBatchSiz: 5 } }), /limits\.maxBatchSiz: unknown key/);
  assert.match(message({ ...ok, port: 'x' }), /^port: Expected number, received string/);
  assert.match(message({ ...ok, port: 70000 }), /^port: Number must be less than or equal to 65535/);
  assert.match(message({ upstreams: [{ url: 'http://x' }] }), /upstreams\[0\]\.url: must be a ws:\/\/ or wss:\/\/ URL/);
  assert.match(message({ upstreams: [] }), /upstreams: needs at least one upstream/);
  assert.match(message({}), /upstreams: is required/);
  assert.match(message({ upstreams: [{ name: 'a', url: 'ws://a' }, { name: 'a', url: 'ws://b' }] }), /upstreams\[1\]\.name: duplicate upstream name "a"/);
  assert.match(message({ ...ok, balancer: 'random' }), /balancer: Invalid enum value/);
  assert.match(message({ ...ok, retry: { backoffBaseMs: 100, backoffMaxMs: 10 } }), /retry\.backoffMaxMs: must be >= retry\.backoffBaseMs/);
  // uWebSockets.js aborts the process on an idle timeout of 1-7 s; the config refuses it first.
  assert.match(message({ ...ok, limits: { idleTimeoutSeconds: 4 } }), /^limits\.idleTimeoutSeconds: must be 0 \(never\) or from 8 to 960 seconds$/);
  assert.equal(parseConfig({ ...ok, limits: { idleTimeoutSeconds: 0 } }).limits.idleTimeoutSeconds, 0);
  assert.equal(parseConfig({ ...ok, limits: { idleTimeoutSeconds: 8 } }).limits.idleTimeoutSeconds, 8);
  assert.equal(parseConfig(ok).limits.maxAnswerBytes, 256 * 1024 * 1024);
  assert.match(message({ ...ok, limits: { maxAnswerBytes: 1024 ** 3 } }), /^limits\.maxAnswerBytes: must be at most 536870888, the longest string Node can make/);
  // Each request is read as one string: a larger one threw out of a uWS handler and ended the process.
  assert.match(message({ ...ok, limits: { maxRequestBytes: 1024 ** 3 } }), /^limits\.maxRequestBytes: must be at most 536870888, the longest string Node can make \(each request is read as one\)$/);
  assert.equal(parseConfig({ ...ok, limits: { maxRequestBytes: 536_870_888 } }).limits.maxRequestBytes, 536_870_888);
  // YAML's .inf made every client's bucket NaN: never refilled, never swept.
  assert.match(message({ ...ok, limits: { requestsPerSecondPerClient: Infinity } }), /^limits\.requestsPerSecondPerClient: Number must be less than or equal to 2147483647$/);
  assert.equal(parseConfig({ ...ok, limits: { requestsPerSecondPerClient: 0.5 } }).limits.requestsPerSecondPerClient, 0.5);
  // A zone id is no part of a URL Node parses: named as such, not as "not a URL".
  assert.match(message({ upstreams: [{ url: 'ws://[fe80::1%25eth0]:8545' }] }), /^upstreams\[0\]\.url: has an IPv6 zone id \(%…\), which a ws:\/\/ URL cannot carry/);
  assert.match(message({ upstreams: [{ url: 'ws://user:pw@[fe80::1%eth0]:8545' }] }), /^upstreams\[0\]\.url: has an IPv6 zone id/);
  // ws refuses a URL with a fragment when it connects: refused here, before anything starts.
  assert.match(message({ upstreams: [{ url: 'wss://node.example/ws/KEY#section' }] }), /^upstreams\[0\]\.url: must not have a #fragment$/);
  // Node fires a timer of 2^31 ms or more after 1 ms: a huge value meant as "never" would mean "at once".
  // Every count and time, as the README says (these took 3,000,000,000 before).
  const counts = [
    ['limits', 'requestBodyTimeoutMs'], ['limits', 'maxSendBufferBytes'], ['limits', 'maxConnections'],
    ['limits', 'requestBurstPerClient'], ['health', 'maxLagBlocks'], ['subscriptions', 'historyBlocks'],
  ] as const;
  for (const [section, key] of [['health', 'probeIntervalMs'], ['heartbeat', 'timeoutMs'], ['subscriptions', 'gracePeriodMs'], ...counts] as const) {
    assert.match(message({ ...ok, [section]: { [key]: 3_000_000_000 } }), new RegExp(`^${section}\\.${key}: Number must be less than or equal to 2147483647$`));
  }
  assert.match(message({ ...ok, requestTimeoutMs: 2 ** 31 }), /^requestTimeoutMs: Number must be less than or equal to 2147483647$/);
  assert.match(message({ upstreams: [{ url: 'ws://127.0.0.1:8545', maxQueue: 3_000_000_000 }] }), /^upstreams\[0\]\.maxQueue: Number must be less than or equal to 2147483647$/);
  assert.equal(parseConfig({ ...ok, requestTimeoutMs: 2 ** 31 - 1 }).requestTimeoutMs, 2 ** 31 - 1);
});

test('flags override the file and --upstream replaces its list', () => {
  const config = buildConfig({ port: 1, upstreams: [{ url: 'ws://file' }] }, { port: 2, upstreams: ['a=ws://one', 'wss://two'] });
  assert.equal(config.port, 2);
  assert.deepEqual(
    config.upstreams.map((u) => [u.name, u.url]),
    [
      ['a', 'ws://one'],
      ['u1', 'wss://two'],
    ],
  );
  assert.deepEqual(parseUpstreamFlag('ws://host:1/path?x=y'), { url: 'ws://host:1/path?x=y' });
  assert.deepEqual(parseUpstreamFlag('a=ws://host:1/path?x=y'), { name: 'a', url: 'ws://host:1/path?x=y' });
  // A bad name is blamed on the name, not on the URL.
  for (const flag of ['a b=ws://one', '=ws://one']) {
    assert.match(message({ upstreams: [parseUpstreamFlag(flag)] }), /^upstreams\[0\]\.name: must be 1-64 characters/, flag);
  }
});

test('upstream headers: kept as given, refused when they could not be sent or would break the handshake', () => {
  const withHeaders = (headers: unknown) => ({ upstreams: [{ url: 'ws://127.0.0.1:8545', headers }] });
  assert.deepEqual(parseConfig(ok).upstreams[0]!.headers, {});
  const config = parseConfig(withHeaders({ Authorization: 'Bearer abc.def', 'X-Api-Key': 'kéy' }));
  assert.deepEqual(config.upstreams[0]!.headers, { Authorization: 'Bearer abc.def', 'X-Api-Key': 'kéy' });
  assert.match(message(withHeaders({ 'Bad Name': 'x' })), /^upstreams\[0\]\.headers\.Bad Name: must be an HTTP header name/);
  assert.match(message(withHeaders({ Authorization: 'Bearer x\r\nX-Evil: 1' })), /^upstreams\[0\]\.headers\.Authorization: must be printable ASCII or Latin-1 text, without line breaks/);
  // Node's HTTP client refuses characters past Latin-1 in a header; the config says so first.
  assert.match(message(withHeaders({ 'X-Api-Key': 'k€y' })), /headers\.X-Api-Key: must be printable ASCII or Latin-1/);
  assert.match(message(withHeaders({ Authorization: 7 })), /^upstreams\[0\]\.headers\.Authorization: Expected string, received number/);
  assert.match(message(withHeaders({ 'Sec-WebSocket-Key': 'x' })), /^upstreams\[0\]\.headers\.Sec-WebSocket-Key: is part of the WebSocket handshake/);
  assert.match(message(withHeaders({ upgrade: 'h2c' })), /headers\.upgrade: is part of the WebSocket handshake/);
  assert.match(message(withHeaders({ authorization: 'a', Authorization: 'b' })), /headers\.Authorization: is given twice/);
  assert.match(message(withHeaders(['Authorization: x'])), /^upstreams\[0\]\.headers: Expected object, received array/);
});

test('admin: a listener of its own, off unless a port is given, never the client port', () => {
  assert.deepEqual(parseConfig(ok).admin, { host: '127.0.0.1' });
  assert.deepEqual(parseConfig({ ...ok, admin: { port: 9547, host: '0.0.0.0' } }).admin, { port: 9547, host: '0.0.0.0' });
  assert.equal(parseConfig({ ...ok, port: 0, admin: { port: 0 } }).admin.port, 0, 'both may pick a free port');
  assert.match(message({ ...ok, admin: { port: 8547 } }), /^admin\.port: must differ from port \(8547\)/);
  assert.match(message({ ...ok, admin: { prot: 1 } }), /^admin\.prot: unknown key$/);
});

test('methods.timeoutMs: per-method timeouts by exact name', () => {
  assert.deepEqual(parseConfig(ok).methods.timeoutMs, {});
  assert.deepEqual(parseConfig({ ...ok, methods: { timeoutMs: { eth_getLogs: 30_000 } } }).methods.timeoutMs, { eth_getLogs: 30_000 });
  assert.match(message({ ...ok, methods: { timeoutMs: { 'eth_get*': 1000 } } }), /^methods\.timeoutMs\.eth_get\*: must be a method name, e\.g\. eth_getLogs/);
  assert.match(message({ ...ok, methods: { timeoutMs: { eth_getLogs: 0 } } }), /^methods\.timeoutMs\.eth_getLogs: Number must be greater than or equal to 1/);
});

test('proxy: trusted ranges are checked, the header name is lower-cased', () => {
  assert.deepEqual(parseConfig(ok).proxy, { trusted: [], header: 'x-forwarded-for' });
  assert.deepEqual(parseConfig({ ...ok, proxy: { trusted: ['10.0.0.0/8'], header: 'X-Real-IP' } }).proxy, { trusted: ['10.0.0.0/8'], header: 'x-real-ip' });
  assert.match(message({ ...ok, proxy: { trusted: ['10.0.0.0/8', 'lb.local'] } }), /^proxy\.trusted\[1\]: "lb\.local" is not an IP address or CIDR range/);
  assert.match(message({ ...ok, proxy: { header: 'x forwarded' } }), /^proxy\.header: must be an HTTP header name/);
});

test('subscriptions.sessionKey: with source header the name must be a header name a client can send', () => {
  assert.deepEqual(parseConfig({ ...ok, subscriptions: { sessionKey: { source: 'header', name: 'X-Session' } } }).subscriptions.sessionKey, { source: 'header', name: 'X-Session' });
  assert.match(message({ ...ok, subscriptions: { sessionKey: { source: 'header', name: 'X Session' } } }), /^subscriptions\.sessionKey\.name: with source 'header', name must be an HTTP header name/);
  // A query parameter may be named anything.
  assert.equal(parseConfig({ ...ok, subscriptions: { sessionKey: { source: 'query', name: 'api key' } } }).subscriptions.sessionKey.name, 'api key');
});

test('a listen address may be an IPv6 one in brackets, as a URL writes it; what is no address or name is refused', () => {
  assert.equal(parseConfig({ ...ok, host: '[::1]' }).host, '::1');
  assert.equal(parseConfig({ ...ok, host: '::' }).host, '::');
  assert.equal(parseConfig({ ...ok, admin: { host: '[::]' } }).admin.host, '::');
  assert.equal(parseConfig({ ...ok, host: 'localhost' }).host, 'localhost');
  assert.equal(parseConfig({ ...ok, host: '0.0.0.0' }).host, '0.0.0.0');
  for (const host of ['[::1', '::zz', 'a b', '[127.0.0.1]x', '-lead']) {
    assert.match(message({ ...ok, host }), /^host: must be an IP address \(0\.0\.0\.0, 127\.0\.0\.1, ::, ::1 or \[::1\]\) or a host name$/, host);
  }
});
