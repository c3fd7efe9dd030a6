/**
 * evmux itself paused (a VM migrated, a container throttled, SIGSTOP) while its nodes are fine:
 * what they sent meanwhile (answers, pongs, heads) waits in its sockets, and on resume every
 * overdue timer fires before those are read (libuv runs timers first, and a stop in epoll_wait
 * ends the wait with nothing read). Deadlines, pong waits and lag are judged after the turn's
 * reads, so the nodes' work counts: before, calls in flight failed as timed out, a subscribe in
 * flight failed, breakers opened, sockets were cut for pongs they had, and lockstep nodes were
 * judged lagging by the first one's backlog of heads.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { CliProcess, tempFiles } from '../support/cli-process.js';
import { DelayRelay } from '../support/delay-relay.js';
import { StreamClient, waitUntil } from '../support/stream-recorder.js';

const PAUSE_MS = 3000;

/** SIGSTOP `pid` while it waits in epoll (its loop idle, as between a gateway's events), else after 2 s. */
async function stopWhileWaiting(pid: number): Promise<void> {
  const EPOLL_WAITS = new Set(['232', '281', '441']); // epoll_wait, epoll_pwait, epoll_pwait2 (x86_64)
  const until = Date.now() + 2000;
  while (Date.now() < until && !EPOLL_WAITS.has(readFileSync(`/proc/${pid}/syscall`, 'utf8').split(' ')[0]!)) {
    await new Promise((resolve) => setImmediate(resolve));
  }
  process.kill(pid, 'SIGSTOP');
}

test('a pause of evmux itself: what the nodes sent meanwhile counts, no call fails, no node is judged', { timeout: 60_000 }, async (t) => {
  const devnet = await LockstepDevnet.start({ nodes: 2, blockTimeMs: 250 });
  t.after(() => devnet.close());
  // Nodes 100 ms away: requests written before the pause are answered during it.
  const relays = await Promise.all(devnet.nodes.map((node) => DelayRelay.start(node.port, 100)));
  t.after(() => Promise.all(relays.map((relay) => relay.close())));
  const config = {
    host: '127.0.0.1',
    port: 0,
    upstreams: relays.map((relay, i) => ({ name: `n${i}`, url: `ws://127.0.0.1:${relay.port}` })),
    requestTimeoutMs: 1500,
    heartbeat: { intervalMs: 500, timeoutMs: 1000 },
  };
  const dir = tempFiles(t, { 'evmux.yaml': JSON.stringify(config) });
  const cli = CliProcess.start(t, ['--config', join(dir, 'evmux.yaml')]);
  const port = await cli.port();
  await waitUntil(
    'both nodes usable',
    async () => ((await (await fetch(`http://127.0.0.1:${port}/readyz`)).json()) as { usableUpstreams: number }).usableUpstreams === 2,
    15_000,
  );
  const client = await StreamClient.open(`ws://127.0.0.1:${port}/`, 'wallet');
  t.after(() => client.close());
  const heads = await client.subscribe(['newHeads']);
  await client.first(heads);
  const before = cli.stdout.length;

  const calls = Array.from({ length: 10 }, () => client.request('eth_getBalance', ['0x0000000000000000000000000000000000000001', 'latest'], 15_000));
  const subscribe = client.request('eth_subscribe', ['logs', {}], 15_000);
  await new Promise((resolve) => setTimeout(resolve, 30));
  await stopWhileWaiting(cli.child.pid!);
  await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
  process.kill(cli.child.pid!, 'SIGCONT');

  const answers = await Promise.all(calls);
  assert.deepEqual(
    answers.filter((answer) => answer['result'] === undefined),
    [],
    'every call in flight answered with what its node sent during the pause',
  );
  assert.equal(typeof (await subscribe)['result'], 'string', 'the subscribe in flight made');
  const tip = client.tip(heads);
  await waitUntil('heads after the pause', () => client.tip(heads) > tip + 4n, 10_000);
  const numbers = client.heads(heads).map((head) => head.number);
  assert.deepEqual(
    numbers.slice(1).filter((n, i) => n !== numbers[i]! + 1n),
    [],
    `heads without gaps or repeats: ${numbers.join(',')}`,
  );
  const judged = cli.stdout
    .slice(before)
    .split('\n')
    .filter((line) => /"msg":"(terminating upstream socket|circuit breaker state changed|upstream not usable|upstream down|subscriptions moved)"|timed out after/.test(line));
  assert.deepEqual(judged, [], `no node judged for the pause:\n${judged.join("\n")}`);
});
