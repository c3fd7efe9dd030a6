/**
 * The demo's anvil nodes live and die with evmux: a stop signal at any moment of its start ends
 * it, and a kill -9 (or an OOM kill), which runs no exit hook, leaves no anvil behind. They are in
 * a process group of their own, so a terminal's Ctrl-C reaches evmux alone.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { CliProcess } from '../support/cli-process.js';
import { sleep, waitUntil } from '../support/stream-recorder.js';

/** Whether process `pid` still runs (a zombie no one reaped does not). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function anvilPids(stdout: string): number[] {
  return [...stdout.matchAll(/"pid":(\d+)[^\n]*"msg":"anvil started"/g)].map((match) => Number(match[1]));
}

test('a stop signal sent as the demo devnet comes up, while evmux finishes its start, ends it with its anvil nodes', async (t) => {
  for (let run = 0; run < 3; run++) {
    const cli = CliProcess.start(t, ['--port', '0']);
    // The moment the devnet is up evmux starts its gateway and swaps its signal handlers, in one go.
    await new Promise<void>((resolve) => {
      const onData = (): void => {
        if (!cli.stdout.includes('lockstep devnet started')) return;
        cli.child.stdout?.off('data', onData);
        cli.child.kill('SIGTERM');
        resolve();
      };
      cli.child.stdout?.on('data', onData);
    });
    const { code, stdout } = await cli.exit(10_000);
    assert.ok(code === 0 || code === 143, `run ${run}: exit code ${code}`);
    await sleep(300);
    assert.deepEqual(anvilPids(stdout).filter(running), [], `run ${run}: anvil nodes left running`);
  }
});

test('kill -9 of the demo leaves no anvil node running', async (t) => {
  const cli = CliProcess.start(t, ['--port', '0']);
  await cli.port(30_000);
  const pids = anvilPids(cli.stdout);
  assert.equal(pids.length, 3, cli.stdout);
  cli.child.kill('SIGKILL');
  await cli.exited;
  await waitUntil('every anvil node gone', () => pids.every((pid) => !running(pid)), 5000).catch(() => undefined);
  const left = pids.filter(running);
  for (const pid of left) process.kill(pid, 'SIGKILL');
  assert.deepEqual(left, [], 'anvil nodes left running after kill -9 of evmux');
});

/** The process group of process `pid` (field 5 of /proc/<pid>/stat). */
function processGroup(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[2]);
}

test("the demo's anvil nodes are not in evmux's process group: a terminal's Ctrl-C (SIGINT to that group) is for evmux, whose drain still needs them", async (t) => {
  const cli = CliProcess.start(t, ['--port', '0']);
  await cli.port(30_000);
  const pids = anvilPids(cli.stdout);
  assert.equal(pids.length, 3, cli.stdout);
  const group = processGroup(cli.child.pid!);
  assert.deepEqual(pids.filter((pid) => processGroup(pid) === group), [], 'anvil nodes in evmux\'s process group');
  cli.child.kill('SIGINT');
  const { code } = await cli.exit(10_000);
  assert.ok(code === 0 || code === 130, `exit code ${code}`);
  await waitUntil('every anvil node gone', () => pids.every((pid) => !running(pid)), 5000).catch(() => undefined);
  assert.deepEqual(pids.filter(running), [], 'anvil nodes left running');
});
