/**
 * Behind a trusted proxy the client is the address its X-Forwarded-For names: the per-IP
 * connection limit counts each client behind one ingress on its own, and an ip session key pins
 * each of them to its own node. From a peer that is not trusted the header is ignored.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { WebSocket } from 'ws';
import { FakeNode } from '../support/fake-node.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { attemptUpgrade, isOpen } from '../support/ws-upgrade.js';

async function rig(t: TestContext, trusted: string[]): Promise<TestGateway> {
  const nodes = await Promise.all([0, 1, 2].map(() => FakeNode.start({ seed: 'proxy-client-ip' })));
  for (const node of nodes) node.handle('eth_newBlockFilter', () => '0xabc');
  t.after(() => Promise.all(nodes.map((node) => node.close())));
  const evmux = await startGateway(nodes.map((node) => node.url), { proxy: { trusted }, limits: { maxConnectionsPerIp: 2 } }, { logLevel: 'warn' });
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
  return Number.parseInt(result.slice(2, 4), 16);
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
