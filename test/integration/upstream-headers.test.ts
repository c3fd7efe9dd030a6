/**
 * Handshake headers for nodes behind an authenticating proxy: `upstreams[].headers` from the
 * config file, with the secret taken from the environment (`${NAME}`), reach the node on every
 * socket and never appear in the log or /status. A node that refuses the handshake (401) is a
 * warning naming the status, once per streak of identical failures. What a refusal says (its
 * body, a redirect's Location) is in the warning and in /status, and a Retry-After is honoured.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { CliProcess, tempFiles } from '../support/cli-process.js';
import { FakeNode } from '../support/fake-node.js';
import { startGateway } from '../support/gateway.js';

const TOKEN = 's3cr3t-token-for-the-test';

async function startNode(t: TestContext): Promise<FakeNode> {
  const node = await FakeNode.start({ requireHeaders: { authorization: `Bearer ${TOKEN}`, 'x-api-key': 'k1' } });
  t.after(() => node.close());
  return node;
}

function startEvmux(t: TestContext, node: FakeNode, authorization: string, env: Record<string, string>): CliProcess {
  const dir = tempFiles(t, {
    'evmux.yaml': [
      'port: 0',
      'upstreams:',
      '  - name: guarded',
      `    url: ${node.url}`,
      '    connections: 2',
      '    headers:',
      `      Authorization: "${authorization}"`,
      '      X-Api-Key: k1',
      'health:',
      '  probeIntervalMs: 100',
      'reconnect:',
      '  baseMs: 10',
      '  maxMs: 20',
      '',
    ].join('\n'),
  });
  return CliProcess.start(t, ['--config', join(dir, 'evmux.yaml')], { env });
}

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const connectWarnings = (stdout: string): string[] =>
  stdout.split('\n').filter((line) => line.includes('"level":40') && line.includes('"msg":"upstream connect failed"'));

await test('headers from the config reach the node on every socket; the secret from the environment is never logged', async (t) => {
  const node = await startNode(t);
  const cli = startEvmux(t, node, 'Bearer ${EVMUX_TEST_NODE_TOKEN}', { EVMUX_TEST_NODE_TOKEN: TOKEN });
  const base = `http://127.0.0.1:${await cli.port()}`;
  await until('/readyz 200', async () => (await fetch(`${base}/readyz`)).status === 200);

  const reply = await fetch(base, { method: 'POST', body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }) });
  assert.deepEqual(await reply.json(), { jsonrpc: '2.0', id: 1, result: '0x7a69' });
  assert.equal(node.handshakes.length, 3, 'one handshake per socket (two for calls, one for subscriptions), none refused');
  for (const headers of node.handshakes) {
    assert.equal(headers['authorization'], `Bearer ${TOKEN}`);
    assert.equal(headers['x-api-key'], 'k1');
  }

  const status = await (await fetch(`${base}/status`)).text();
  assert.doesNotMatch(status, new RegExp(TOKEN));
  assert.match(cli.stdout, /"headerNames":\["Authorization","X-Api-Key"\][^\n]*"msg":"upstream starting"/);
  assert.doesNotMatch(cli.stdout, new RegExp(TOKEN), 'the token is not in the log');
  assert.deepEqual(connectWarnings(cli.stdout), []);
  cli.child.kill('SIGTERM');
  assert.equal((await cli.exit(5_000)).code, 0);
});

await test('a refused handshake is a warning naming the status, logged again only when the reason changes', async (t) => {
  const node = await startNode(t);
  const cli = startEvmux(t, node, 'Bearer wrong-token', {});
  const base = `http://127.0.0.1:${await cli.port()}`;
  await until('ten refused handshakes', () => node.handshakes.length >= 10);
  assert.equal((await fetch(`${base}/readyz`)).status, 503);
  const refused = connectWarnings(cli.stdout);
  assert.equal(refused.length, 3, `one warning per socket for the whole streak:\n${refused.join('\n')}`);
  for (const line of refused) assert.match(line, /"err":"handshake answered 401 Unauthorized"/);

  node.acceptConnections = false;
  await until('the new reason logged', () => connectWarnings(cli.stdout).length >= 6);
  for (const line of connectWarnings(cli.stdout).slice(3)) assert.match(line, /"err":"handshake answered 503 Service Unavailable"/);
  cli.child.kill('SIGTERM');
  assert.equal((await cli.exit(5_000)).code, 0);
});

await test("a provider's refusal says why in the log and /status, and its Retry-After is waited out", async (t) => {
  const node = await FakeNode.start();
  t.after(() => node.close());
  const body = '{"jsonrpc":"2.0","id":null,"error":{"code":-32005,"message":"daily request quota exceeded"}}';
  node.handshakeAnswer = { status: '429 Too Many Requests', headers: { 'Retry-After': '1' }, body };
  const evmux = await startGateway([{ name: 'metered', url: node.url, streamSocket: 'shared' }], { reconnect: { baseMs: 10, maxMs: 20 } }, { waitReady: false });
  t.after(() => evmux.close());

  await new Promise((resolve) => setTimeout(resolve, 2_500));
  // At its own backoff (10-20 ms) evmux asked ~100 times in 2.5 s; told to wait a second, three times.
  assert.ok(node.handshakes.length >= 2 && node.handshakes.length <= 3, `${node.handshakes.length} handshakes in 2.5 s`);
  const warning = evmux.logs.find((line) => line['msg'] === 'upstream connect failed');
  assert.equal(warning?.['err'], `handshake answered 429 Too Many Requests: ${body}`);
  assert.equal(warning?.['retryAfterMs'], 1000);
  const lastError = async (): Promise<{ reason: string } | null> => JSON.parse((await evmux.get('/status')).body).upstreams[0].lastError;
  assert.equal((await lastError())?.reason, `handshake answered 429 Too Many Requests: ${body}`);

  node.handshakeAnswer = { status: '301 Moved Permanently', headers: { Location: 'wss://new.example/v1' } };
  await until('the redirect seen', async () => (await lastError())?.reason === 'handshake answered 301 Moved Permanently (Location: wss://new.example/v1)', 5_000);
  node.handshakeAnswer = undefined;
  await until('connected', async () => JSON.parse((await evmux.get('/status')).body).upstreams[0].connected === true, 5_000);
  assert.match((await lastError())?.reason ?? '', /^handshake answered 301/, 'the last error stays after the node recovers');
});

await test('a refusal that echoes the request shows the keys of the node URL and headers as ***', async (t) => {
  const node = await FakeNode.start();
  t.after(() => node.close());
  const key = 'k3yS3cr3tABCDEF0123456789';
  node.handshakeAnswer = { status: '404 Not Found', body: `<pre>Cannot GET /ws/v3/${key}?apikey=q%2Bkey9 (as p@ss-w0rd, ${TOKEN})</pre>` };
  const url = `${node.url.replace('ws://', 'ws://user:p%40ss-w0rd@')}/ws/v3/${key}?apikey=q%2Bkey9`;
  const evmux = await startGateway([{ name: 'echoing', url, headers: { authorization: `Bearer ${TOKEN}` }, streamSocket: 'shared' }], {}, { waitReady: false });
  t.after(() => evmux.close());
  const shown = 'handshake answered 404 Not Found: <pre>Cannot GET /ws/v3/***?apikey=*** (as ***, ***)</pre>';
  await until('the refusal seen', async () => JSON.parse((await evmux.get('/status')).body).upstreams[0].lastError?.reason === shown, 5_000);
  assert.equal(evmux.logs.find((line) => line['msg'] === 'upstream connect failed')?.['err'], shown);
  for (const secret of [key, 'q+key9', 'q%2Bkey9', 'p@ss-w0rd', TOKEN]) {
    assert.ok(!JSON.stringify(evmux.logs).includes(secret) && !(await evmux.get('/status')).body.includes(secret), `${secret} shown`);
  }
});
