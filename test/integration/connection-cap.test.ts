/**
 * `limits.maxConnections`: WebSocket upgrades past the cap are refused with 503 and a JSON-RPC
 * error, counted, and a closed connection makes room. Unset, the cap comes from the open-files
 * limit, so clients cannot take the descriptors evmux needs: under a limit of 200, 150 clients
 * leave evmux answering health checks at once and able to connect again to a node it lost.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { CliProcess } from '../support/cli-process.js';
import { FakeNode } from '../support/fake-node.js';
import { startGateway } from '../support/gateway.js';
import { assertWatchedChain, watchHeads } from '../support/head-watchers.js';
import { sumSamples } from '../support/prom-text.js';
import { waitUntil } from '../support/stream-recorder.js';
import { attemptUpgrade, isOpen } from '../support/ws-upgrade.js';

interface StatusShape {
  upstreams: Array<{ name: string; usable: boolean; subscriptions: { topics: Array<{ kind: string; clients: number }> } | null }>;
}

const CAP_MESSAGE = /^too many connections: this server holds \d+ \(limits\.maxConnections\); try again later$/;

test('upgrades past limits.maxConnections get 503 with a JSON-RPC error; a closed connection makes room', async (t) => {
  const node = await FakeNode.start();
  t.after(() => node.close());
  const evmux = await startGateway([node.url], { limits: { maxConnections: 3 } });
  t.after(() => evmux.close());

  const outcomes = await Promise.all(Array.from({ length: 6 }, () => attemptUpgrade(evmux.wsUrl)));
  const open = outcomes.filter(isOpen).map((outcome) => outcome.open);
  t.after(() => open.forEach((ws) => ws.terminate()));
  assert.equal(open.length, 3, 'exactly the cap, with the upgrades made at once');
  for (const outcome of outcomes.filter((each) => !isOpen(each))) {
    assert.ok('status' in outcome, `refused, not ${JSON.stringify(outcome)}`);
    assert.equal(outcome.status, 503);
    const body = JSON.parse(outcome.body) as { id: null; error: { code: number; message: string } };
    assert.equal(body.error.code, -32005);
    assert.match(body.error.message, CAP_MESSAGE);
    assert.ok(body.error.message.includes('holds 3'));
  }
  const status = JSON.parse((await evmux.get('/status')).body) as { clients: number; maxClients: number };
  assert.deepEqual([status.clients, status.maxClients], [3, 3]);
  assert.equal(sumSamples((await evmux.get('/metrics')).body, 'evmux_client_rejections_total', { reason: 'connections' }), 3);
  const warnings = evmux.logs.filter((line) => line['msg'] === 'client connection cap reached: WebSocket upgrades refused with 503');
  assert.deepEqual(warnings.map((line) => [line['level'], line['maxConnections']]), [[40, 3]], 'logged once for the three refusals');

  const closed = new Promise((resolve) => open[0]!.once('close', resolve));
  open[0]!.close();
  await closed;
  await waitUntil('the closed connection counted out', async () => (JSON.parse((await evmux.get('/status')).body) as { clients: number }).clients === 2, 2000);
  const again = await attemptUpgrade(evmux.wsUrl);
  assert.ok(isOpen(again), `room again after a close, got ${JSON.stringify(again)}`);
  open.push(again.open);
});

test('unset, the cap leaves descriptors free: under 200 open files evmux refuses the surplus, answers /readyz and reconnects to a restarted node', async (t) => {
  const devnet = await LockstepDevnet.start({ nodes: 2, blockTimeMs: 250 });
  t.after(() => devnet.close());
  const [a, b] = devnet.nodes;
  const cli = CliProcess.start(t, ['--upstream', `a=${a!.wsUrl}`, '--upstream', `b=${b!.wsUrl}`, '--port', '0'], {
    launcher: ['prlimit', '--nofile=200'],
  });
  const port = await cli.port();
  const base = `http://127.0.0.1:${port}`;
  assert.match(cli.stdout, /"maxConnections":100,"openFiles":200,"msg":"client connection cap"/);
  await waitUntil('both nodes usable', async () => ((await (await fetch(`${base}/readyz`)).json()) as { usableUpstreams: number }).usableUpstreams === 2, 10_000);

  const watchers = await watchHeads(t, `ws://127.0.0.1:${port}/`, 100, devnet);
  const surplus = await Promise.all(Array.from({ length: 50 }, () => attemptUpgrade(`ws://127.0.0.1:${port}/`)));
  t.after(() => surplus.filter(isOpen).forEach((outcome) => outcome.open.terminate()));
  const statuses = surplus.map((outcome) => ('status' in outcome ? outcome.status : isOpen(outcome) ? 'open' : outcome.failed));
  assert.deepEqual(statuses, Array(50).fill(503), 'every connection past the cap refused at once');

  const started = Date.now();
  const ready = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(2000) });
  assert.equal(ready.status, 200, `/readyz answered in ${Date.now() - started} ms`);

  // The clients share an address, so one node holds their streams: kill it, then bring it back.
  const status = JSON.parse(await (await fetch(`${base}/status`)).text()) as StatusShape;
  const name = status.upstreams.find((upstream) => upstream.subscriptions?.topics.some((topic) => topic.clients > 0))?.name;
  assert.ok(name !== undefined, 'a node holds the clients\' streams');
  const killed = name === 'a' ? 0 : 1;
  const usable = async (): Promise<boolean> =>
    (JSON.parse(await (await fetch(`${base}/status`)).text()) as StatusShape).upstreams.find((upstream) => upstream.name === name)?.usable === true;
  await devnet.kill(killed);
  await waitUntil(`node ${name} marked down`, async () => !(await usable()), 5000);
  await devnet.restart(killed);
  await waitUntil(`node ${name} usable again after its restart (a new socket to it)`, usable, 20_000);

  await assertWatchedChain(watchers, devnet, a!.httpUrl);
});
