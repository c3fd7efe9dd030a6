/**
 * Connections that never upgrade are not counted by limits.maxConnections and can take every open
 * file. evmux then closes its client port instead of retrying accept() in a busy loop, gives its
 * reserve of descriptors to what it needs (a node it must reach again), keeps its streams going,
 * says so on /readyz, and listens again once the connections go.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { CliProcess, tempFiles } from '../support/cli-process.js';
import { assertWatchedChain, watchHeads } from '../support/head-watchers.js';
import { sumSamples } from '../support/prom-text.js';
import { sleep, StreamClient, waitUntil } from '../support/stream-recorder.js';

/** Keeps `count` plain TCP connections to a port, opening a new one whenever one closes, until stopped. */
class ConnectionHog {
  readonly #sockets = new Set<Socket>();
  #stopped = false;

  constructor(
    readonly port: number,
    count: number,
  ) {
    for (let i = 0; i < count; i++) this.#open();
  }

  #open(): void {
    if (this.#stopped) return;
    const socket = connect({ host: '127.0.0.1', port: this.port });
    this.#sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => {
      this.#sockets.delete(socket);
      setTimeout(() => this.#open(), 20);
    });
  }

  stop(): void {
    this.#stopped = true;
    for (const socket of this.#sockets) socket.destroy();
  }
}

/** CPU seconds (user + system) the process has used, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

test('plain connections that take every open file: the client port closes (no busy loop), streams and node reconnects go on, and it opens again once they go', async (t) => {
  const devnet = await LockstepDevnet.start({ nodes: 2, blockTimeMs: 250 });
  t.after(() => devnet.close());
  const [a, b] = devnet.nodes;
  const dir = tempFiles(t, { 'evmux.json': JSON.stringify({ admin: { port: 0 } }) });
  const cli = CliProcess.start(t, ['--config', join(dir, 'evmux.json'), '--upstream', `a=${a!.wsUrl}`, '--upstream', `b=${b!.wsUrl}`, '--port', '0'], {
    launcher: ['prlimit', '--nofile=200'],
  });
  const port = await cli.port();
  const adminPort = Number(/"port":(\d+)[^\n]*"msg":"admin listening/.exec(cli.stdout)?.[1]);
  const admin = `http://127.0.0.1:${adminPort}`;
  const readyz = async (): Promise<{ status: number; accepting: boolean; usableUpstreams: number }> => {
    const response = await fetch(`${admin}/readyz`);
    return { status: response.status, ...((await response.json()) as { accepting: boolean; usableUpstreams: number }) };
  };
  await waitUntil('both nodes usable', async () => (await readyz()).usableUpstreams === 2, 10_000);

  const watchers = await watchHeads(t, `ws://127.0.0.1:${port}/`, 10, devnet);

  const hog = new ConnectionHog(port, 250);
  t.after(() => hog.stop());
  await waitUntil('the client port closed', async () => !(await readyz()).accepting, 5000);
  const pausedReady = await readyz();
  assert.equal(pausedReady.status, 503, '/readyz is 503 while clients cannot connect');
  assert.ok(await refused(port), 'a new connection is refused, not left in the backlog');
  const pid = cli.child.pid!;
  const cpuBefore = cpuSeconds(pid);
  await sleep(2000);
  const busy = (cpuSeconds(pid) - cpuBefore) / 2;
  assert.ok(busy < 0.5, `evmux used ${Math.round(busy * 100)} % of a core while out of files (a busy accept loop uses 100 %)`);
  const metrics = await (await fetch(`${admin}/metrics`)).text();
  assert.ok(sumSamples(metrics, 'evmux_accept_pauses_total') >= 1);
  assert.ok(cli.stdout.includes('"msg":"open files exhausted by client connections: not accepting clients until some close"'));

  // A node lost now can be reached again: the reserve's descriptors were given back for that.
  await devnet.kill(0);
  await waitUntil('node a marked down', async () => (await readyz()).usableUpstreams === 1, 5000);
  await devnet.restart(0);
  await waitUntil('node a usable again (a new socket to it)', async () => (await readyz()).usableUpstreams === 2, 20_000);

  hog.stop();
  await waitUntil('accepting again', async () => (await readyz()).status === 200, 10_000);
  assert.equal(sumSamples(await (await fetch(`${admin}/metrics`)).text(), 'evmux_accepting_clients'), 1);
  const late = await StreamClient.open(`ws://127.0.0.1:${port}/`, 'late');
  t.after(() => late.close());
  await late.first(await late.subscribe(['newHeads']));
  await assertWatchedChain(watchers, devnet, b!.httpUrl);
});
