/**
 * SIGTERM to the evmux command: calls in flight finish (up to shutdownGraceMs) and their answers are
 * written, each WebSocket client is closed with 1012 (service restart) once its own are, new calls
 * are refused as sent to no node, no new connection is accepted, and the process exits 0. In
 * process, Gateway.close() leaves no connection open, idle HTTP keep-alive ones included.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { WebSocket } from 'ws';
import { CliProcess, tempFiles } from '../support/cli-process.js';
import { FakeNode } from '../support/fake-node.js';
import { startGateway } from '../support/gateway.js';
import { Probe, subscriptionOf } from '../support/ws-probe.js';
import { attemptUpgrade, isOpen } from '../support/ws-upgrade.js';

async function startEvmux(t: TestContext, shutdownGraceMs: number): Promise<{ node: FakeNode; cli: CliProcess; port: number }> {
  const node = await FakeNode.start();
  t.after(() => node.close());
  const dir = tempFiles(t, {
    'evmux.yaml': `port: 0\nshutdownGraceMs: ${shutdownGraceMs}\nupstreams:\n  - name: slow\n    url: ${node.url}\n`,
  });
  const cli = CliProcess.start(t, ['--config', join(dir, 'evmux.yaml')]);
  const port = await cli.port();
  for (let i = 0; (await fetch(`http://127.0.0.1:${port}/readyz`)).status !== 200; i++) {
    assert.ok(i < 100, 'evmux never became ready');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { node, cli, port };
}

function closeOf(ws: WebSocket): Promise<{ code: number; reason: string; at: number }> {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString(), at: Date.now() })));
}

async function waitForRequests(node: FakeNode, method: string, count: number): Promise<void> {
  for (let i = 0; (node.stats.requests.get(method) ?? 0) < count; i++) {
    assert.ok(i < 200, `${method} never reached the node`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

test('SIGTERM: in-flight calls complete, clients are closed with 1012, exit 0', async (t) => {
  const { node, cli, port } = await startEvmux(t, 5_000);
  const idle = await Probe.open(`ws://127.0.0.1:${port}/`, t);
  const busy = await Probe.open(`ws://127.0.0.1:${port}/`, t);
  const idleClosed = closeOf(idle.ws);
  const busyClosed = closeOf(busy.ws);

  node.latencyMs = 1_200;
  const wsCall = busy.request('web3_clientVersion', [], 5_000).then((reply) => ({ reply, at: Date.now() }));
  const httpCall = fetch(`http://127.0.0.1:${port}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 'h', method: 'web3_clientVersion' }),
  }).then(async (response) => ({ status: response.status, body: (await response.json()) as unknown }));
  await waitForRequests(node, 'web3_clientVersion', 2);

  const signalled = Date.now();
  cli.child.kill('SIGTERM');
  // Stops accepting at once, while the calls are still running.
  await new Promise((resolve) => setTimeout(resolve, 200));
  const late = await attemptUpgrade(`ws://127.0.0.1:${port}/`);
  if (isOpen(late)) late.open.terminate();
  assert.ok(!isOpen(late), 'a new connection after SIGTERM is not accepted');

  const { reply, at: answeredAt } = await wsCall;
  assert.deepEqual(reply, { jsonrpc: '2.0', id: 1, result: 'FakeNode/v0.1.0/evmux-test' });
  assert.deepEqual(await httpCall, { status: 200, body: { jsonrpc: '2.0', id: 'h', result: 'FakeNode/v0.1.0/evmux-test' } });
  const busyClose = await busyClosed;
  const idleClose = await idleClosed;
  for (const close of [busyClose, idleClose]) {
    assert.equal(close.code, 1012);
    assert.match(close.reason, /shutting down/);
  }
  assert.ok(busyClose.at >= answeredAt, 'the answer came before the close');
  const { code, signal } = await cli.exit(5_000);
  assert.equal(signal, null);
  assert.equal(code, 0);
  const took = Date.now() - signalled;
  assert.ok(took >= 900 && took < 4_000, `exit ${took} ms after SIGTERM (the slow call needed about 1.2 s)`);
  assert.match(cli.stdout, /"signal":"SIGTERM"[^\n]*"msg":"signal received"/);
  assert.match(cli.stdout, /"msg":"shut down"/);
  // A clean shutdown warns of nothing: alerts on warn lines would fire at every deploy.
  const afterSignal = cli.stdout.slice(cli.stdout.indexOf('"msg":"signal received"'));
  assert.deepEqual(afterSignal.split('\n').filter((line) => /"level":(40|50|60)/.test(line)), [], 'no warning while shutting down');
});

test('SIGTERM: a call slower than shutdownGraceMs does not hold up the exit; over HTTP it is answered 503, not reset', async (t) => {
  const { node, cli, port } = await startEvmux(t, 400);
  const busy = await Probe.open(`ws://127.0.0.1:${port}/`, t);
  const busyClosed = closeOf(busy.ws);
  node.latencyMs = 10_000;
  busy.send({ jsonrpc: '2.0', id: 1, method: 'web3_clientVersion' });
  const httpCall = fetch(`http://127.0.0.1:${port}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 'h', method: 'web3_clientVersion' }),
  }).then(async (response) => ({ status: response.status, body: (await response.json()) as { error?: { code: number; message: string } } }));
  await waitForRequests(node, 'web3_clientVersion', 2);

  const signalled = Date.now();
  cli.child.kill('SIGTERM');
  const close = await busyClosed;
  assert.equal(close.code, 1012);
  const answer = await httpCall;
  assert.equal(answer.status, 503);
  assert.equal(answer.body.error?.code, -32050);
  assert.match(answer.body.error?.message ?? '', /^evmux shut down before the node answered \(shutdownGraceMs ran out\): the call may have been carried out$/);
  const { code } = await cli.exit(5_000);
  assert.equal(code, 0);
  const took = Date.now() - signalled;
  assert.ok(took >= 350 && took < 3_000, `exit ${took} ms after SIGTERM with a grace of 400 ms`);
});

test('SIGTERM under steady calls: each client is closed once its calls are answered, later calls are refused as sent to no node, and the exit does not wait out the grace', async (t) => {
  const { node, cli, port } = await startEvmux(t, 5_000);
  node.latencyMs = 30;
  const refusal = /^evmux is shutting down: this call was not sent to any node; send it again/;
  // Each client sends its next call as soon as an answer comes, and stops at a refusal.
  const clients = await Promise.all(
    Array.from({ length: 8 }, async () => {
      const probe = await Probe.open(`ws://127.0.0.1:${port}/`, t);
      const client = { probe, unanswered: 0, answered: 0, refused: 0, other: [] as unknown[], closed: closeOf(probe.ws) };
      const send = (): void => {
        client.unanswered++;
        probe.send({ jsonrpc: '2.0', id: client.answered, method: 'eth_blockNumber' });
      };
      probe.ws.on('message', (data: Buffer) => {
        client.unanswered--;
        const answer = JSON.parse(data.toString()) as { result?: string; error?: { code: number; message: string } };
        if (answer.error === undefined) {
          client.answered++;
          send();
        } else if (answer.error.code === -32050 && refusal.test(answer.error.message)) client.refused++;
        else client.other.push(answer);
      });
      send();
      return client;
    }),
  );
  await new Promise((resolve) => setTimeout(resolve, 500));
  const signalled = Date.now();
  cli.child.kill('SIGTERM');
  const closes = await Promise.all(clients.map((client) => client.closed));
  const { code } = await cli.exit(5_000);
  assert.equal(code, 0);
  const took = Date.now() - signalled;
  assert.ok(took < 2_000, `exit ${took} ms after SIGTERM, with calls of 30 ms and a grace of 5 s`);
  for (const [i, client] of clients.entries()) {
    assert.ok(client.answered > 0, `client ${i} made calls`);
    assert.deepEqual(client.other, [], `client ${i}: no other error`);
    assert.equal(client.unanswered, 0, `client ${i}: every call it sent was answered or refused before its close`);
    assert.equal(client.refused, 1, `client ${i}: its one call sent after the signal was refused`);
    assert.equal(closes[i]!.code, 1012);
  }
});

test('SIGTERM while large answers are being read: they arrive whole, over HTTP and over WebSocket, before the close', async (t) => {
  const { node, cli, port } = await startEvmux(t, 5_000);
  const data = `0x${'ab'.repeat(4 * 1024 * 1024)}`;
  node.handle('eth_getLogs', () => [{ data }]);
  const body = JSON.stringify({ jsonrpc: '2.0', id: 'h', method: 'eth_getLogs', params: [{}] });
  // Both clients read nothing for a while once the answer starts: most of it waits in evmux.
  const http = new Promise<{ length: number; received: number }>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/', headers: { 'content-type': 'application/json' } }, (res) => {
      let received = 0;
      res.once('data', () => {
        res.pause();
        setTimeout(() => res.resume(), 600);
      });
      res.on('data', (chunk: Buffer) => (received += chunk.length));
      res.on('end', () => resolve({ length: Number(res.headers['content-length']), received }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
  const probe = await Probe.open(`ws://127.0.0.1:${port}/`, t);
  const wsClosed = closeOf(probe.ws);
  let wsAnswer = 0;
  probe.ws.on('message', (frame: Buffer) => (wsAnswer = frame.length));
  const raw = (probe.ws as unknown as { _socket: import('node:net').Socket })._socket;
  raw.once('data', () => {
    raw.pause();
    setTimeout(() => raw.resume(), 600);
  });
  probe.send({ jsonrpc: '2.0', id: 'w', method: 'eth_getLogs', params: [{}] });
  await waitForRequests(node, 'eth_getLogs', 2);
  await new Promise((resolve) => setTimeout(resolve, 300));
  cli.child.kill('SIGTERM');
  const answer = await http;
  assert.equal(answer.received, answer.length, 'the whole HTTP answer');
  assert.ok(answer.length > data.length);
  const close = await wsClosed;
  assert.ok(wsAnswer > data.length, `the whole WebSocket answer before the close (${wsAnswer} bytes)`);
  assert.equal(close.code, 1012);
  assert.equal((await cli.exit(5_000)).code, 0);
});

test('SIGTERM with nothing in flight: a request whose body is still arriving is read and refused, not cut', async (t) => {
  const { cli, port } = await startEvmux(t, 3_000);
  const body = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'eth_sendRawTransaction', params: [`0x${'02'.repeat(2000)}`] });
  const socket = connect({ host: '127.0.0.1', port });
  t.after(() => socket.destroy());
  await new Promise((resolve) => socket.once('connect', resolve));
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(`POST / HTTP/1.1\r\nHost: evmux\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 1000)}`);
  await new Promise((resolve) => setTimeout(resolve, 100));
  cli.child.kill('SIGTERM');
  await new Promise((resolve) => setTimeout(resolve, 20));
  socket.write(body.slice(1000));
  await closed;
  assert.match(received, /^HTTP\/1\.1 200 OK\r\n/);
  const answer = JSON.parse(received.slice(received.indexOf('\r\n\r\n') + 4)) as { id: number; error?: { code: number; message: string } };
  assert.equal(answer.id, 7);
  assert.equal(answer.error?.code, -32050);
  assert.match(answer.error?.message ?? '', /^evmux is shutting down: this call was not sent to any node/);
  assert.equal((await cli.exit(5_000)).code, 0);
});

test('SIGTERM: eth_unsubscribe is still served during the drain (the subscription is this evmux\'s alone), and nothing comes for it after', async (t) => {
  const { node, cli, port } = await startEvmux(t, 3_000);
  const client = await Probe.open(`ws://127.0.0.1:${port}/`, t);
  const closed = closeOf(client.ws);
  const subscribed = await client.request('eth_subscribe', ['newHeads']);
  const id = subscribed['result'] as string;
  await client.notification(id); // the current head, sent on subscribing
  // A slow call keeps the client from being closed at once.
  node.latencyMs = 1_000;
  client.send({ jsonrpc: '2.0', id: 'slow', method: 'web3_clientVersion' });
  await waitForRequests(node, 'web3_clientVersion', 1);
  cli.child.kill('SIGTERM');
  await new Promise((resolve) => setTimeout(resolve, 100));
  const unsubscribed = await client.request('eth_unsubscribe', [id]);
  assert.equal(unsubscribed['result'], true, JSON.stringify(unsubscribed));
  node.advance(1);
  assert.equal((await closed).code, 1012);
  await client.expectNone((frame) => subscriptionOf(frame) === id, 0);
  assert.equal((await cli.exit(5_000)).code, 0);
});

test('SIGTERM: a large answer the client reads nothing of is cut at the grace\'s end without a warning (the shutdown cut it, not the client)', async (t) => {
  const { node, cli, port } = await startEvmux(t, 500);
  node.handle('eth_getLogs', () => [{ data: `0x${'ab'.repeat(4 * 1024 * 1024)}` }]);
  const socket = connect({ host: '127.0.0.1', port });
  t.after(() => socket.destroy());
  await new Promise((resolve) => socket.once('connect', resolve));
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_getLogs', params: [{}] });
  socket.write(`POST / HTTP/1.1\r\nHost: evmux\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  socket.once('data', () => socket.pause());
  await waitForRequests(node, 'eth_getLogs', 1);
  await new Promise((resolve) => setTimeout(resolve, 200));
  cli.child.kill('SIGTERM');
  assert.equal((await cli.exit(5_000)).code, 0);
  const afterSignal = cli.stdout.slice(cli.stdout.indexOf('"msg":"signal received"'));
  assert.deepEqual(afterSignal.split('\n').filter((line) => /"level":(40|50|60)/.test(line)), [], 'no warning while shutting down');
});

test('SIGTERM after a client hung up on a large GET answer mid-way: the exit does not wait for it', async (t) => {
  const { cli, port } = await startEvmux(t, 5_000);
  // Logs filters of many addresses make /status megabytes long, more than socket buffers take at
  // once: it is written as the client takes it.
  const subscriber = await Probe.open(`ws://127.0.0.1:${port}/`, t);
  for (let i = 0; i < 60; i++) {
    const address = Array.from({ length: 1_000 }, (_, k) => `0x${(i * 1_000_000 + k + 1).toString(16).padStart(40, '0')}`);
    assert.equal(typeof (await subscriber.request('eth_subscribe', ['logs', { address }], 5_000))['result'], 'string');
  }
  const socket = connect({ host: '127.0.0.1', port });
  t.after(() => socket.destroy());
  await new Promise((resolve) => socket.once('connect', resolve));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write('GET /status HTTP/1.1\r\nHost: evmux\r\n\r\n');
  const head = await new Promise<string>((resolve) => socket.once('data', (chunk: Buffer) => resolve(chunk.toString('latin1'))));
  socket.pause();
  assert.ok(Number(/content-length: (\d+)/i.exec(head)?.[1]) > 5_000_000, 'a large answer');
  await new Promise((resolve) => setTimeout(resolve, 200));
  socket.destroy();
  await closed;
  const signalled = Date.now();
  cli.child.kill('SIGTERM');
  assert.equal((await cli.exit(10_000)).code, 0);
  const took = Date.now() - signalled;
  assert.ok(took < 2_500, `exit ${took} ms after SIGTERM with nothing in flight and a grace of 5 s`);
});

test('Gateway.close() drops idle HTTP keep-alive connections too, so nothing of it stays open', async (t) => {
  const node = await FakeNode.start();
  t.after(() => node.close());
  const evmux = await startGateway([node.url]);
  t.after(() => evmux.close());
  const socket = connect({ host: '127.0.0.1', port: evmux.gateway.port });
  t.after(() => socket.destroy());
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const answered = new Promise<string>((resolve) => socket.once('data', (chunk: Buffer) => resolve(chunk.toString())));
  socket.write('GET /healthz HTTP/1.1\r\nHost: evmux\r\n\r\n');
  assert.match(await answered, /^HTTP\/1\.1 200 OK\r\n/);
  await evmux.close();
  const outcome = await Promise.race([closed.then(() => 'closed'), new Promise((resolve) => setTimeout(() => resolve('still open after 2 s'), 2000))]);
  assert.equal(outcome, 'closed', 'the idle keep-alive connection');
});

test('closing while a node\'s subscriptions ride on a call socket, their own socket back, warns of nothing', async (t) => {
  const node = await FakeNode.start({ seed: 'shutdown-stand-in' });
  t.after(() => node.close());
  const evmux = await startGateway([node.url], {}, { logLevel: 'info' });
  // Closed by the test itself below; also on a failed assertion, or the file never ends.
  t.after(() => evmux.close());
  const client = await Probe.open(evmux.wsUrl, t);
  client.send({ jsonrpc: '2.0', id: 1, method: 'eth_subscribe', params: ['newHeads'] });
  await client.waitFor((frame) => (frame.json as { id?: unknown }).id === 1, 2000);
  // The subscriptions' socket drops: a call socket carries them until their own is back and has
  // stayed up a while. Closed in that while, the call socket goes first.
  const streamsOnOwnSocket = async (): Promise<boolean> =>
    (JSON.parse((await evmux.get('/status')).body) as { upstreams: Array<{ streamsOnOwnSocket: boolean }> }).upstreams[0]!.streamsOnOwnSocket;
  node.dropSockets((socket) => socket.calls === 0 && socket.subscriptions > 0);
  for (let i = 0; (await streamsOnOwnSocket()) || node.stats.connections < 2; i++) {
    assert.ok(i < 200, 'the subscriptions never moved to a call socket with their own socket back');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const from = evmux.logs.length;
  await evmux.close();
  const warnings = evmux.logs.slice(from).filter((line) => (line['level'] as number) >= 40);
  assert.deepEqual(warnings, [], 'a clean shutdown logs no warning');
});
