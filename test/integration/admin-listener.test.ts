/**
 * `admin.port`: /metrics and /status move to a listener of their own, kept off the port clients
 * reach; the health checks answer on both; the admin listener takes nothing but GET and HEAD, and
 * closes with the gateway. Without it everything stays on the client port.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { startAdminServer } from '../../src/server/admin-server.js';
import { FakeNode } from '../support/fake-node.js';
import { startGateway, type TestGateway } from '../support/gateway.js';

async function rig(t: TestContext, admin: { port?: number }): Promise<TestGateway> {
  const node = await FakeNode.start();
  t.after(() => node.close());
  const evmux = await startGateway([node.url], { admin }, { logLevel: 'warn' });
  t.after(() => evmux.close());
  return evmux;
}

const status = async (url: string, init?: RequestInit): Promise<number> => (await fetch(url, init)).status;

await test('with admin.port, /metrics and /status answer there and not on the client port; health checks answer on both', async (t) => {
  const evmux = await rig(t, { port: 0 });
  const adminPort = evmux.gateway.adminPort;
  assert.ok(adminPort !== undefined && adminPort !== evmux.gateway.port, 'a port of its own');
  const admin = `http://127.0.0.1:${adminPort}`;

  const metrics = await fetch(`${admin}/metrics`);
  assert.equal(metrics.status, 200);
  assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain/);
  assert.equal(metrics.headers.get('access-control-allow-origin'), null, "the operators' listener is not open to pages of other origins");
  assert.match(await metrics.text(), /^evmux_upstream_up\{upstream="node0"\} 1$/m);
  const snapshot = (await (await fetch(`${admin}/status?pretty=1`)).json()) as { upstreams: Array<{ name: string }> };
  assert.deepEqual(snapshot.upstreams.map((upstream) => upstream.name), ['node0']);
  assert.equal(await status(`${admin}/readyz`), 200);
  assert.equal(await status(`${admin}/healthz`), 200);

  for (const path of ['/metrics', '/status']) {
    const refused = await evmux.get(path);
    assert.equal(refused.status, 404, `${path} is not on the client port`);
    assert.match(refused.body, /\/status and \/metrics are on the admin listener/);
  }
  const put = await fetch(evmux.httpUrl, { method: 'PUT', body: '{}' });
  assert.deepEqual([put.status, await put.text()], [405, 'use POST for JSON-RPC; a GET of / names the other paths\n']);
  assert.equal(put.headers.get('allow'), 'GET, HEAD, POST, OPTIONS');
  assert.match((await evmux.get('/')).body, /^not found: try \/healthz \/readyz \(\/status and \/metrics are on the admin listener\)/);
  assert.equal((await evmux.get('/readyz')).status, 200, 'load balancers still probe the client port');
  assert.equal((await evmux.get('/healthz')).status, 200);
  for (const path of ['/healthz', '/readyz']) {
    // Load balancers health-check with HEAD as well: its answer is GET's without the body.
    const head = await fetch(`${evmux.httpUrl.replace(/\/$/, '')}${path}`, { method: 'HEAD' });
    const get = await fetch(`${evmux.httpUrl.replace(/\/$/, '')}${path}`);
    const body = await get.text();
    assert.equal(head.status, 200, `HEAD ${path}`);
    assert.equal(head.headers.get('content-length'), String(Buffer.byteLength(body)), `HEAD ${path} names GET's length`);
    assert.equal(await head.text(), '', `HEAD ${path} has no body`);
  }

  assert.equal(await status(`${admin}/`, { method: 'POST', body: '{}' }), 405, 'no JSON-RPC on the admin listener');
  assert.equal(await status(`${admin}/nope`), 404);
  assert.equal(await status(`${admin}/metrics`, { method: 'HEAD' }), 200);

  await evmux.close();
  await assert.rejects(fetch(`${admin}/healthz`), 'the admin listener closed with the gateway');
});

await test('without admin.port, /metrics and /status stay on the client port', async (t) => {
  const evmux = await rig(t, {});
  assert.equal(evmux.gateway.adminPort, undefined);
  assert.equal((await evmux.get('/metrics')).status, 200);
  assert.equal((await evmux.get('/status')).status, 200);
});

await test('the admin listener gives its routes the path and the query apart', async () => {
  const asked: Array<[string, string]> = [];
  const server = await startAdminServer('127.0.0.1', 0, async (path, query) => {
    asked.push([path, query]);
    return { status: 200, contentType: 'text/plain', body: 'ok' };
  }, () => {});
  try {
    for (const path of ['/status?topics=all', '/status', '/metrics?a=1?b=2']) await (await fetch(`http://127.0.0.1:${server.port}${path}`)).text();
  } finally {
    await server.close();
  }
  assert.deepEqual(asked, [['/status', 'topics=all'], ['/status', ''], ['/metrics', 'a=1?b=2']]);
});
