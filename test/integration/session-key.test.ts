/**
 * Session keys from a header: a client that sends the same key is pinned to the same node for its
 * filters over HTTP and WebSocket alike; different keys spread over the nodes; without the header
 * the key falls back to the client IP.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { WebSocket } from 'ws';
import { FakeNode } from '../support/fake-node.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { decodeFilterId } from '../../src/router/filter-id.js';

const HEADER = 'X-Evmux-Session';
const nodes: FakeNode[] = [];
let evmux: TestGateway;

before(async () => {
  for (let i = 0; i < 3; i++) {
    const node = await FakeNode.start({ seed: 'session-key' });
    // Each filter an id of its own, as nodes give (one id for all would be one node filter).
    let made = 0;
    node.handle('eth_newBlockFilter', () => `0x${(++made).toString(16)}`);
    nodes.push(node);
  }
  evmux = await startGateway(nodes.map((node) => node.url), { subscriptions: { sessionKey: { source: 'header', name: HEADER } } }, { logLevel: 'warn' });
});

after(async () => {
  await evmux.close();
  await Promise.all(nodes.map((node) => node.close()));
});

/** Index of the node holding a filter made through evmux, as its id names it. */
function filterNode(id: unknown): number {
  assert.equal(typeof id, 'string', `a filter id, got ${JSON.stringify(id)}`);
  return decodeFilterId(id).upstreamIndex;
}

async function httpFilterNode(key: string | undefined): Promise<number> {
  const response = await fetch(evmux.httpUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key === undefined ? {} : { [HEADER]: key }) },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_newBlockFilter', params: [] }),
  });
  return filterNode(((await response.json()) as { result?: unknown }).result);
}

async function wsFilterNode(key: string | undefined): Promise<number> {
  const socket = new WebSocket(evmux.wsUrl, key === undefined ? {} : { headers: { [HEADER]: key } });
  try {
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    const reply = new Promise<{ result?: unknown }>((resolve) => socket.once('message', (data) => resolve(JSON.parse(String(data)) as { result?: unknown })));
    socket.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_newBlockFilter', params: [] }));
    return filterNode((await reply).result);
  } finally {
    socket.close();
  }
}

test('one header key: the same node every time, over HTTP and WebSocket', async () => {
  for (const key of ['alice', 'bob', 'carol']) {
    const http = await Promise.all([1, 2, 3, 4].map(() => httpFilterNode(key)));
    assert.equal(new Set(http).size, 1, `key ${key} over HTTP: ${http.join(', ')}`);
    assert.equal(await wsFilterNode(key), http[0], `key ${key} over WebSocket lands where HTTP did`);
  }
});

test('different header keys spread over the nodes; no header falls back to the client IP', async () => {
  const used = new Set<number>();
  for (let i = 0; i < 30; i++) used.add(await httpFilterNode(`key-${i}`));
  assert.ok(used.size >= 2, `30 keys used nodes ${[...used].join(', ')}`);
  const anonymous = await Promise.all([1, 2, 3].map(() => httpFilterNode(undefined)));
  assert.equal(new Set(anonymous).size, 1, 'no header: pinned by IP');
  // HTTP reads the peer address lazily; it must be the same address the WebSocket upgrade saw.
  assert.equal(anonymous[0], await wsFilterNode(undefined), 'no header: HTTP lands where WebSocket from the same IP does');
});
