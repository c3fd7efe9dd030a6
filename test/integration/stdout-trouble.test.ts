/**
 * Trouble on evmux's stdout costs log lines, never the gateway: a reader that stopped reading, a
 * terminal that takes no more output, a full disk, a reader that went away after the first line
 * (`evmux --demo | head -1`). Each time evmux serves, and a SIGTERM ends it with exit code 0.
 */
import assert from 'node:assert/strict';
import { closeSync, openSync } from 'node:fs';
import { test } from 'node:test';
import { freePort } from '../../src/devnet/free-port.js';
import { CliProcess } from '../support/cli-process.js';
import { fullFifo } from '../support/full-fifo.js';
import { sleep, waitUntil } from '../support/stream-recorder.js';

async function healthy(port: number): Promise<boolean> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(1_000) })).status === 200;
  } catch {
    return false;
  }
}

const NOWHERE = ['--upstream', 'nowhere=ws://127.0.0.1:1', '--log-level', 'debug'];

test('behind a reader that stopped reading (its pipe full), evmux serves, and a SIGTERM ends it at once', async (t) => {
  const { writer } = fullFifo(t);
  const port = await freePort();
  const cli = CliProcess.start(t, [...NOWHERE, '--port', String(port)], { stdout: writer });
  closeSync(writer);
  await waitUntil('evmux serving', () => healthy(port), 20_000);
  cli.child.kill('SIGTERM');
  const { code, stderr } = await cli.exit(5_000);
  assert.equal(code, 0, stderr);
});

/**
 * Runs the rest of its arguments with stdout on a terminal whose buffer is full: nobody reads it (a
 * Ctrl-S, an ssh client asleep). Node has no pseudo-terminals; python's pty module does. exec keeps the pid.
 */
const FULL_TERMINAL = `
import fcntl, os, pty, sys, tty
master, slave = pty.openpty()
tty.setraw(slave)
os.set_inheritable(master, True)
flags = fcntl.fcntl(slave, fcntl.F_GETFL)
fcntl.fcntl(slave, fcntl.F_SETFL, flags | os.O_NONBLOCK)
try:
    while True:
        os.write(slave, b'.' * 256)
except BlockingIOError:
    pass
fcntl.fcntl(slave, fcntl.F_SETFL, flags)
os.dup2(slave, 1)
os.execv(sys.argv[1], sys.argv[1:])
`;

test('on a terminal that takes no more output, evmux serves, and a SIGTERM ends it at once', async (t) => {
  const port = await freePort();
  const cli = CliProcess.start(t, [...NOWHERE, '--port', String(port)], { launcher: ['python3', '-c', FULL_TERMINAL] });
  await waitUntil('evmux serving', () => healthy(port), 20_000);
  cli.child.kill('SIGTERM');
  const { code, stderr } = await cli.exit(5_000);
  assert.equal(code, 0, stderr);
});

test('with stdout on a full disk, evmux serves, says so once on stderr, and a SIGTERM ends it', async (t) => {
  const full = openSync('/dev/full', 'w');
  const port = await freePort();
  const cli = CliProcess.start(t, [...NOWHERE, '--port', String(port)], { stdout: full });
  closeSync(full);
  await waitUntil('evmux serving', () => healthy(port), 20_000);
  await sleep(1_500); // lines logged and tried again meanwhile
  assert.equal(await healthy(port), true);
  cli.child.kill('SIGTERM');
  const { code, stderr } = await cli.exit(5_000);
  assert.equal(code, 0, stderr);
  assert.equal(
    stderr,
    'evmux: cannot write to stdout (ENOSPC: no space left on device, write): log lines wait, up to 16777216 characters, and are written once it takes them again\n',
  );
});

test('the demo behind a reader that leaves after the first line (`| head -1`) goes on serving, and a SIGTERM ends it', async (t) => {
  const port = await freePort();
  const cli = CliProcess.start(t, ['--demo', '--port', String(port)]);
  await new Promise((resolve) => cli.child.stdout?.once('data', resolve));
  cli.child.stdout?.destroy();
  await waitUntil('evmux serving', () => healthy(port), 60_000);
  await sleep(500); // the banner is written once evmux listens
  assert.equal(cli.child.exitCode, null, `evmux ended: ${cli.stderr}`);
  assert.equal(await healthy(port), true);
  cli.child.kill('SIGTERM');
  const { code, stderr } = await cli.exit(10_000);
  assert.equal(code, 0, stderr);
  assert.match(stderr, /^evmux: cannot write to stdout \(EPIPE: broken pipe, write\): no one reads them any more: log lines are dropped from now on\n$/);
});
