import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';

import { SCHED_IDLE, SCHED_OTHER, schedulingPolicies } from '../../src/runtime/helper-threads.js';
import { CliProcess, tempFiles } from '../support/cli-process.js';

const ONE_CPU = ['taskset', '-c', '0'];
const canRun = process.platform === 'linux' && spawnSync('taskset', ['-c', '0', 'chrt', '-p', String(process.pid)]).status === 0;
const UPSTREAM = ['--upstream', 'nowhere=ws://127.0.0.1:1', '--port', '0'];

/** Starts evmux, waits until it listens, returns its pid, its threads' policies and its log. */
async function threadsOfRunning(t: TestContext, args: string[], launcher: readonly string[]): Promise<{ pid: number; byThread: Map<number, number>; stdout: string }> {
  const cli = CliProcess.start(t, args, { launcher });
  await cli.port();
  const pid = cli.child.pid!;
  const byThread = schedulingPolicies(pid);
  cli.child.kill('SIGTERM');
  const { code, stdout } = await cli.exit(5_000);
  assert.equal(code, 0);
  return { pid, byThread, stdout };
}

describe('helper threads at idle CPU priority', { skip: canRun ? false : 'needs Linux, taskset and chrt' }, () => {
  test('helperThreads "auto" confined to one CPU: every helper thread runs SCHED_IDLE and the event loop keeps normal priority', async (t) => {
    const dir = tempFiles(t, { 'c.yaml': 'helperThreads: auto\n' });
    const { pid, byThread, stdout } = await threadsOfRunning(t, ['--config', join(dir, 'c.yaml'), ...UPSTREAM], ONE_CPU);
    const line = stdout.split('\n').find((text) => text.includes('"msg":"helper threads run at idle CPU priority"'));
    assert.ok(line !== undefined, `no helper-threads line in:\n${stdout}`);
    const logged = JSON.parse(line) as { threads: number; cpus: number };
    assert.equal(logged.cpus, 1);
    assert.equal(byThread.get(pid), SCHED_OTHER, 'the event loop thread');
    const idle = [...byThread].filter(([tid, policy]) => tid !== pid && policy === SCHED_IDLE);
    assert.ok(idle.length >= 4, `V8 starts at least 4 worker threads; idle: ${idle.length} of ${JSON.stringify([...byThread])}`);
    assert.equal(idle.length, logged.threads);
  });

  test('helperThreads "auto" with CPUs to spare changes nothing', { skip: availableParallelism() > 1 ? false : 'this machine has one CPU' }, async (t) => {
    const dir = tempFiles(t, { 'c.yaml': 'helperThreads: auto\n' });
    const { byThread } = await threadsOfRunning(t, ['--config', join(dir, 'c.yaml'), ...UPSTREAM], []);
    assert.deepEqual(new Set(byThread.values()), new Set([SCHED_OTHER]));
  });

  test('by default every thread keeps normal priority on one CPU too: the event loop waits on its helpers at times', async (t) => {
    const { byThread } = await threadsOfRunning(t, UPSTREAM, ONE_CPU);
    assert.deepEqual(new Set(byThread.values()), new Set([SCHED_OTHER]));
  });
});
