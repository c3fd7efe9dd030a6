import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect } from 'node:net';
import WebSocket from 'ws';
import { devnetGatewayForFile } from '../support/devnet-gateway.js';

const files = devnetGatewayForFile(2);

test('HTTP call is answered with the node result and the caller id', async () => {
  const response = await fetch(files.evmux.httpUrl, { method: 'POST', body: JSON.stringify({ jsonrpc: '2.0', id: 'abc', method: 'eth_chainId' }) });
  assert.deepEqual(await response.json(), { jsonrpc: '2.0', id: 'abc', result: '0x7a69' });
});

test('HTTP responses carry their own status line and headers, in any order of kinds', async () => {
  const post = (body: string): Promise<Response> => fetch(files.evmux.httpUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const call = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId' });
  const notification = JSON.stringify({ jsonrpc: '2.0', method: 'eth_chainId' });
  // Alternate the kinds so that a header set or status kept from the previous response would show.
  for (let round = 0; round < 2; round++) {
    const answered = await post(call);
    assert.equal(answered.status, 200);
    assert.equal(answered.headers.get('content-type'), 'application/json');
    assert.equal(answered.headers.get('access-control-allow-origin'), '*');
    assert.equal(answered.headers.get('access-control-allow-methods'), null);
    await answered.arrayBuffer();

    const silent = await post(notification);
    assert.equal(silent.status, 204, 'a notification alone gets no body');
    assert.equal(silent.headers.get('access-control-allow-origin'), '*');

    const preflight = await fetch(files.evmux.httpUrl, { method: 'OPTIONS' });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-methods'), 'POST, GET, OPTIONS');
    assert.equal(preflight.headers.get('content-type'), 'text/plain');
    assert.equal(preflight.headers.get('access-control-allow-headers'), 'content-type, authorization');
    const asking = await fetch(files.evmux.httpUrl, { method: 'OPTIONS', headers: { 'access-control-request-headers': 'content-type,x-api-key,session' } });
    assert.equal(asking.headers.get('access-control-allow-headers'), 'content-type,x-api-key,session', 'a dapp may send its API key or session header');
    const odd = await fetch(files.evmux.httpUrl, { method: 'OPTIONS', headers: { 'access-control-request-headers': 'x-a, <script>' } });
    assert.equal(odd.headers.get('access-control-allow-headers'), 'content-type, authorization', 'what is not a list of names is not echoed');

    const missing = await fetch(new URL('/nowhere', files.evmux.httpUrl));
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get('content-type'), 'text/plain');
    assert.equal(missing.headers.get('access-control-allow-origin'), '*', 'a page of any origin reads every answer of the client port');
    assert.equal(missing.headers.get('access-control-allow-methods'), null);
    await missing.arrayBuffer();

    const refused = await fetch(files.evmux.httpUrl, { method: 'PUT', body: call });
    assert.equal(refused.status, 405);
    assert.equal(refused.headers.get('allow'), 'GET, HEAD, POST, OPTIONS');
    assert.equal(refused.headers.get('access-control-allow-origin'), '*', 'a method refused too');
    await refused.arrayBuffer();

    // A dapp checks whether evmux is ready before it picks it: the browser lets it read the answer.
    const ready = await fetch(new URL('/readyz', files.evmux.httpUrl), { headers: { origin: 'http://dapp.example' } });
    assert.equal(ready.status, 200);
    assert.equal(ready.headers.get('access-control-allow-origin'), '*');
    await ready.arrayBuffer();
  }
});

test('WebSocket newHeads subscription delivers the current head, then mined blocks in order', async () => {
  const ws = new WebSocket(files.evmux.wsUrl);
  await new Promise((resolve) => ws.once('open', resolve));
  const messages: Array<Record<string, unknown>> = [];
  ws.on('message', (data) => messages.push(JSON.parse(data.toString()) as Record<string, unknown>));
  const wait = async (count: number): Promise<void> => {
    const deadline = Date.now() + 5000;
    while (messages.length < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  };
  // Nothing mines unless told to: this is the head while the subscription starts.
  const current = await files.devnet.head(0);
  ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_subscribe', params: ['newHeads'] }));
  await wait(2);
  const id = messages[0]!.result as string;
  assert.match(id, /^0x[0-9a-f]{32}$/);
  await files.devnet.mine(3);
  await wait(5);
  await new Promise((resolve) => setTimeout(resolve, 100)); // anything more would show up now
  assert.ok(messages.slice(1).every((m) => m.method === 'eth_subscription' && (m.params as { subscription: string }).subscription === id));
  const heads = messages.slice(1).map((m) => (m.params as { result: { number: string; hash: string; parentHash: string } }).result);
  assert.deepEqual(heads.map((head) => BigInt(head.number)), [0n, 1n, 2n, 3n].map((k) => current.number + k), 'the head at subscribe time, then the three mined blocks');
  assert.equal(heads[0]!.hash, current.hash, 'the first notification is the current head');
  for (let i = 1; i < heads.length; i++) assert.equal(heads[i]!.parentHash, heads[i - 1]!.hash);
  const perNode = await Promise.all(['node0', 'node1'].map((upstream) => files.evmux.metric('evmux_upstream_subscriptions', { kind: 'newHeads', upstream })));
  assert.equal(perNode.reduce((sum, value) => (sum ?? 0) + (value ?? 0), 0), 1, 'one upstream newHeads subscription in total');
  ws.close();
});

test('numeric ids past 2^53 come back digit for digit, over HTTP and WebSocket, alone and in batches, results and errors', async () => {
  const big = '12345678901234567890';
  const huge = '1e400';
  const post = async (body: string): Promise<string> => {
    const response = await fetch(files.evmux.httpUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    assert.equal(response.status, 200);
    return response.text();
  };
  // Results (the node's reply behind the caller's id) and errors (evmux's own), alone and in a batch.
  assert.equal(await post(`{"jsonrpc":"2.0","id":${big},"method":"eth_chainId","params":[]}`), `{"jsonrpc":"2.0","id":${big},"result":"0x7a69"}`);
  assert.match(await post(`{"jsonrpc":"2.0","id":${huge},"method":"debug_traceCall","params":[]}`), new RegExp(`^\\{"jsonrpc":"2\\.0","id":${huge},"error":\\{"code":-32601,`));
  const batch = await post(`[{"id":${big},"jsonrpc":"2.0","method":"eth_chainId"}, {"jsonrpc":"2.0","id":18446744073709551615,"method":"nope_x"}]`);
  assert.match(batch, new RegExp(`^\\[\\{"jsonrpc":"2\\.0","id":${big},"result":"0x7a69"\\},\\{"jsonrpc":"2\\.0","id":18446744073709551615,"error":`));

  const ws = new WebSocket(files.evmux.wsUrl);
  await new Promise((resolve) => ws.once('open', resolve));
  const answer = (text: string): Promise<string> =>
    new Promise((resolve) => {
      ws.once('message', (data) => resolve(data.toString()));
      ws.send(text);
    });
  assert.equal(await answer(`{"jsonrpc":"2.0","id":${big},"method":"eth_chainId"}`), `{"jsonrpc":"2.0","id":${big},"result":"0x7a69"}`);
  assert.match(await answer(`{"jsonrpc":"2.0","id":${big},"method":"eth_subscribe","params":["newHeads"]}`), new RegExp(`^\\{"jsonrpc":"2\\.0","id":${big},"result":"0x[0-9a-f]{32}"\\}$`));
  ws.close();
});

test('HTTP pipelining is refused by closing the connection, never by mixing up answers; keep-alive works', async () => {
  const request = (id: number): string => {
    // A method a node answers: eth_chainId and net_version are answered by evmux at once, before uWS reads the next request.
    const body = `{"jsonrpc":"2.0","id":${id},"method":"web3_clientVersion"}`;
    return `POST / HTTP/1.1\r\nHost: evmux\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
  };
  const { port } = new URL(files.evmux.httpUrl);
  const exchange = async (send: (socket: ReturnType<typeof connect>) => void): Promise<{ received: string; closed: boolean }> => {
    const socket = connect({ host: '127.0.0.1', port: Number(port) });
    let received = '';
    let closed = false;
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    socket.on('close', () => (closed = true));
    socket.on('error', () => {});
    await new Promise((resolve) => socket.once('connect', resolve));
    send(socket);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    socket.destroy();
    return { received, closed };
  };
  const ids = (text: string): number[] => [...text.matchAll(/"id":\s*(\d+)/g)].map((m) => Number(m[1]));

  // One after the other on one connection: each answered, the connection kept.
  const sequential = await exchange((socket) => {
    socket.write(request(1));
    setTimeout(() => socket.write(request(2)), 300);
  });
  assert.deepEqual(ids(sequential.received), [1, 2]);
  assert.equal(sequential.closed, false);

  // Sent together: the connection is closed; whatever was answered before carries the right id.
  const pipelined = await exchange((socket) => socket.write(request(1) + request(2) + request(3)));
  assert.equal(pipelined.closed, true);
  const answered = ids(pipelined.received);
  assert.deepEqual(answered, [1, 2, 3].slice(0, answered.length));
});

test('a request the size of a six-blob transaction (1.6 MB of hex) reaches the node, over HTTP and WebSocket', async () => {
  // Six 128 KiB blobs with their commitments and proofs, as eth_sendRawTransaction carries them.
  // The bytes are not a valid transaction, so the node's own refusal is the answer: evmux let it through.
  const raw = `0x03${'ab'.repeat(6 * (131_072 + 96) + 200)}`;
  const body = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'eth_sendRawTransaction', params: [raw] });
  assert.ok(body.length > 1_500_000);
  const http = await fetch(files.evmux.httpUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  assert.equal(http.status, 200);
  const overHttp = (await http.json()) as { id: number; error?: { code: number; message: string } };
  assert.equal(overHttp.id, 7);
  assert.ok(overHttp.error !== undefined, 'the node refuses the made-up bytes');
  assert.match(overHttp.error.message, /failed to decode transaction/i, "anvil's answer, not a refusal by evmux");

  const ws = new WebSocket(files.evmux.wsUrl);
  await new Promise((resolve) => ws.once('open', resolve));
  const reply = new Promise<{ id: number; error?: { code: number; message: string } }>((resolve) => ws.once('message', (data) => resolve(JSON.parse(data.toString()))));
  ws.send(body);
  const overWs = await reply;
  ws.close();
  assert.deepEqual(overWs, overHttp, 'the same answer over WebSocket, the socket not closed for size');
});
