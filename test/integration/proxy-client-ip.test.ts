/**
 * Behind a trusted proxy the client is the address its X-Forwarded-For names (or, with
 * `proxy.header: proxy-protocol`, the PROXY protocol v2 header a TCP load balancer sends first): the
 * per-IP connection limit counts each client behind one ingress on its own, and an ip session key
 * pins each of them to its own node. From a peer that is not trusted the header is ignored.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { connect as tcpConnect } from 'node:net';
import { WebSocket } from 'ws';
import { FakeNode } from '../support/fake-node.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { attemptUpgrade, isOpen } from '../support/ws-upgrade.js';
import { decodeFilterId } from '../../src/router/filter-id.js';

async function rig(t: TestContext, trusted: string[], header?: string): Promise<TestGateway> {
  const nodes = await Promise.all([0, 1, 2].map(() => FakeNode.start({ seed: 'proxy-client-ip' })));
  // Each filter an id of its own, as nodes give (one id for all would be one node filter).
  let made = 0;
  for (const node of nodes) node.handle('eth_newBlockFilter', () => `0x${(++made).toString(16)}`);
  t.after(() => Promise.all(nodes.map((node) => node.close())));
  const evmux = await startGateway(nodes.map((node) => node.url), { proxy: { trusted, ...(header !== undefined && { header }) }, limits: { maxConnectionsPerIp: 2 } }, { logLevel: 'warn' });
  t.after(() => evmux.close());
  return evmux;
}

/** Open a socket claiming to be `client`; the upgrade's HTTP status when it is refused. */
async function connect(t: TestContext, evmux: TestGateway, client: string): Promise<WebSocket | number> {
  const outcome = await attemptUpgrade(evmux.wsUrl, { headers: { 'X-Forwarded-For': client } });
  if (isOpen(outcome)) {
    t.after(() => outcome.open.terminate());
    return outcome.open;
  }
  if ('status' in outcome) return outcome.status;
  throw new Error(outcome.failed);
}

/** The node index encoded in the filter id evmux hands out (its first byte). */
async function filterNode(evmux: TestGateway, client: string): Promise<number> {
  const response = await fetch(evmux.httpUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': `${client}, 127.0.0.1` },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_newBlockFilter', params: [] }),
  });
  const { result } = (await response.json()) as { result: string };
  return decodeFilterId(result).upstreamIndex;
}

await test('trusted proxy: the connection limit counts each forwarded client on its own', async (t) => {
  const evmux = await rig(t, ['127.0.0.1']);
  assert.ok((await connect(t, evmux, '203.0.113.1')) instanceof WebSocket);
  assert.ok((await connect(t, evmux, '203.0.113.1')) instanceof WebSocket);
  assert.equal(await connect(t, evmux, '203.0.113.1'), 429, 'the third from one client is over the limit of 2');
  assert.ok((await connect(t, evmux, '203.0.113.2')) instanceof WebSocket, 'another client behind the same proxy is not');
  assert.ok((await connect(t, evmux, '203.0.113.1, 203.0.113.3')) instanceof WebSocket, 'read from the right: this is 203.0.113.3');
});

await test('trusted proxy: an ip session key pins each forwarded client to its own node', async (t) => {
  const evmux = await rig(t, ['127.0.0.0/8']);
  const clients = Array.from({ length: 24 }, (_, i) => `198.51.100.${i + 1}`);
  const first = await Promise.all(clients.map((client) => filterNode(evmux, client)));
  const again = await Promise.all(clients.map((client) => filterNode(evmux, client)));
  assert.deepEqual(again, first, 'each client stays on its node');
  assert.ok(new Set(first).size > 1, `24 clients behind one proxy spread over the nodes: ${first.join(',')}`);
});

await test('untrusted peer: the header is ignored', async (t) => {
  const evmux = await rig(t, ['10.0.0.0/8']);
  assert.ok((await connect(t, evmux, '203.0.113.1')) instanceof WebSocket);
  assert.ok((await connect(t, evmux, '203.0.113.2')) instanceof WebSocket);
  assert.equal(await connect(t, evmux, '203.0.113.3'), 429, 'all three are 127.0.0.1');
  const nodes = await Promise.all(['198.51.100.1', '198.51.100.2', '198.51.100.3', '198.51.100.4'].map((client) => filterNode(evmux, client)));
  assert.equal(new Set(nodes).size, 1, 'one client, one node');
});

/** A PROXY protocol v2 header: the PROXY command, TCP over IPv4, from `client` port 4711 to 10.0.0.1:8547. */
function proxyV2(client: string): Buffer {
  const signature = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
  const addresses = Buffer.from([...client.split('.').map(Number), 10, 0, 0, 1, 0x12, 0x67, 0x21, 0x63]);
  return Buffer.concat([signature, Buffer.from([0x21, 0x11, 0x00, addresses.length]), addresses]);
}

/**
 * Send `prefix` and an HTTP request on a new TCP connection; resolves with the answer's first
 * chunk. The connection stays open (an accepted WebSocket counts against its client's limit) until
 * the test ends.
 */
function rawRequest(t: TestContext, evmux: TestGateway, prefix: Buffer, request: string): Promise<string> {
  const port = Number(new URL(evmux.httpUrl).port);
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(port, '127.0.0.1', () => socket.write(Buffer.concat([prefix, Buffer.from(request)])));
    t.after(() => socket.destroy());
    socket.once('data', (chunk) => resolve(chunk.toString()));
    socket.once('error', reject);
  });
}

const UPGRADE = 'GET / HTTP/1.1\r\nHost: evmux\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
const statusOf = (answer: string): number => Number(answer.slice(9, 12));

await test('proxy-protocol from a trusted peer: the client its PROXY header names is counted and pinned on its own', async (t) => {
  const evmux = await rig(t, ['127.0.0.1'], 'proxy-protocol');
  const upgrade = async (client: string): Promise<string> => rawRequest(t, evmux, proxyV2(client), UPGRADE);
  assert.equal(statusOf(await upgrade('203.0.113.1')), 101);
  assert.equal(statusOf(await upgrade('203.0.113.1')), 101);
  const third = await upgrade('203.0.113.1');
  assert.equal(statusOf(third), 429, 'the third from one client is over the limit of 2');
  assert.match(third, /too many connections from 203\.0\.113\.1/);
  assert.equal(statusOf(await upgrade('203.0.113.2')), 101, 'another client behind the same balancer is not');
  assert.equal(statusOf(await rawRequest(t, evmux, Buffer.alloc(0), UPGRADE)), 101, 'a connection without the header is its peer, 127.0.0.1');

  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_newBlockFilter', params: [] });
  const post = `POST / HTTP/1.1\r\nHost: evmux\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
  const filterNodeOf = async (client: string): Promise<number> => {
    const answer = await rawRequest(t, evmux, proxyV2(client), post);
    const result = /"result":"(0x[0-9a-f]+)"/.exec(answer)?.[1];
    assert.ok(result, answer);
    return decodeFilterId(result).upstreamIndex;
  };
  const clients = Array.from({ length: 24 }, (_, i) => `198.51.100.${i + 1}`);
  const first = await Promise.all(clients.map(filterNodeOf));
  assert.deepEqual(await Promise.all(clients.map(filterNodeOf)), first, 'each client stays on its node over HTTP');
  assert.ok(new Set(first).size > 1, `24 clients behind one balancer spread over the nodes: ${first.join(',')}`);
});

await test('proxy-protocol from an untrusted peer: the PROXY header is ignored', async (t) => {
  const evmux = await rig(t, ['10.0.0.0/8'], 'proxy-protocol');
  assert.equal(statusOf(await rawRequest(t, evmux, proxyV2('203.0.113.1'), UPGRADE)), 101);
  assert.equal(statusOf(await rawRequest(t, evmux, proxyV2('203.0.113.2'), UPGRADE)), 101);
  const third = await rawRequest(t, evmux, proxyV2('203.0.113.3'), UPGRADE);
  assert.equal(statusOf(third), 429, 'all three are 127.0.0.1');
  assert.match(third, /too many connections from 127\.0\.0\.1/);
});

for (const header of ['x-forwarded-for', 'forwarded']) {
  await test(`trusted proxy (${header}): a line the proxy appends after the client's own is read, not the client's`, async (t) => {
    // HAProxy's `option forwardfor` adds a line of its own at the end, after any the client sent.
    const evmux = await rig(t, ['127.0.0.1'], header);
    const hop = (address: string): string => (header === 'forwarded' ? `Forwarded: for=${address}` : `X-Forwarded-For: ${address}`);
    const upgrade = (spoofed: string, client: string): Promise<string> =>
      rawRequest(t, evmux, Buffer.alloc(0), UPGRADE.replace('\r\n\r\n', `\r\n${hop(spoofed)}\r\n${hop(client)}\r\n\r\n`));
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push(statusOf(await upgrade(`6.6.6.${i}`, '203.0.113.1')));
    assert.deepEqual(statuses, [101, 101, 429, 429], 'one client, whatever it wrote itself: 2 of 4 within the limit');
    // Nor can a client use up another's connections by writing that one's address.
    assert.equal(statusOf(await upgrade('198.51.100.7', '203.0.113.2')), 101);
    assert.equal(statusOf(await upgrade('198.51.100.7', '203.0.113.2')), 101);
    assert.equal(statusOf(await upgrade('203.0.113.9', '198.51.100.7')), 101, "the named victim's own first connection");
  });
}

test('on a dual-stack listener (host "::") an IPv4 client is named by its IPv4 address, not in IPv4-mapped IPv6 form', async (t) => {
  const node = await FakeNode.start({ seed: 'proxy-client-ip' });
  t.after(() => node.close());
  const evmux = await startGateway([node.url], { host: '::', limits: { maxConnectionsPerIp: 1 } }, { logLevel: 'warn' });
  t.after(() => evmux.close());
  const first = await attemptUpgrade(evmux.wsUrl);
  assert.ok(isOpen(first), 'the first connection is taken');
  t.after(() => first.open.terminate());
  const second = await attemptUpgrade(evmux.wsUrl);
  assert.ok(!isOpen(second) && 'status' in second, JSON.stringify(second));
  assert.equal(second.status, 429);
  assert.match(second.body, /too many connections from 127\.0\.0\.1: at most 1 \(limits\.maxConnectionsPerIp\)/);
});
