import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';

import { SEMI_SPACE_MB } from '../../src/runtime/young-generation.js';
import { CliProcess } from '../support/cli-process.js';

const WARNING = /"msg":"young generation is/;

/** Start the command (node flags: the shebang's unless given), stop it once it listens; its stdout. */
async function logsOfOneRun(t: TestContext, nodeFlags?: readonly string[]): Promise<string> {
  const cli = CliProcess.start(t, ['--upstream', 'nowhere=ws://127.0.0.1:1', '--port', '0'], nodeFlags !== undefined ? { nodeFlags } : {});
  await cli.port();
  cli.child.kill('SIGTERM');
  const { code, stdout } = await cli.exit(5_000);
  assert.equal(code, 0);
  return stdout;
}

describe('the evmux command and its V8 young generation', () => {
  test('started with its shebang flags it runs quietly', async (t) => {
    assert.doesNotMatch(await logsOfOneRun(t), WARNING);
  });

  test('started by plain node it warns, naming the size it got and the flags it wants', async (t) => {
    const stdout = await logsOfOneRun(t, []);
    const line = stdout.split('\n').find((text) => WARNING.test(text));
    assert.ok(line !== undefined, `no young-generation warning in:\n${stdout}`);
    const logged = JSON.parse(line) as { level: number; semiSpaceMb: number; wantedMb: number; msg: string };
    assert.equal(logged.wantedMb, SEMI_SPACE_MB);
    assert.ok(logged.semiSpaceMb < SEMI_SPACE_MB, `semiSpaceMb ${logged.semiSpaceMb}`);
    assert.match(logged.msg, new RegExp(`--min-semi-space-size=${SEMI_SPACE_MB}`));
  });
});

describe('the evmux command and its port', () => {
  test('a second evmux on a port already taken exits 1 naming the port (no share of the first one\'s clients), and the first goes on', async (t) => {
    const first = CliProcess.start(t, ['--upstream', 'nowhere=ws://127.0.0.1:1', '--port', '0']);
    const port = await first.port();
    const second = CliProcess.start(t, ['--upstream', 'nowhere=ws://127.0.0.1:1', '--port', String(port)]);
    const { code, stderr, stdout } = await second.exit(10_000);
    assert.equal(code, 1, `exit code; stdout: ${stdout}`);
    assert.equal(stderr, `evmux: cannot listen on 127.0.0.1:${port}: in use, or not an address of this machine\n`);
    assert.doesNotMatch(stdout, /evmux listening/);
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
    first.child.kill('SIGTERM');
    assert.equal((await first.exit(5_000)).code, 0);
  });
});

describe('the evmux command on a Node.js its uWebSockets.js build has no binary for', () => {
  test('it exits 1 saying which Node it needs, instead of dying in the JS stand-in uWS loads', async (t) => {
    // Node 22's module ABI, as uWS's loader reads it to pick its binary (only it reads this value).
    const dir = mkdtempSync(join(tmpdir(), 'evmux-abi-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const preload = join(dir, 'abi-127.mjs');
    writeFileSync(preload, "Object.defineProperty(process.versions, 'modules', { value: '127' });\n");
    const cli = CliProcess.start(t, ['--upstream', 'nowhere=ws://127.0.0.1:1', '--port', '0'], { nodeFlags: ['--import', preload] });
    const { code, stderr } = await cli.exit(10_000);
    assert.equal(code, 1);
    // uWS's loader says what it could not load first; evmux's line ends it.
    assert.match(stderr, /\nevmux: uWebSockets\.js \(@trufflesuite\/uws-js-unofficial\) has no native build for Node\.js v[\d.]+ \(module ABI 127\), only for Node\.js 16, 18 and 20: run evmux on Node\.js 20\n$/);
  });
});

describe('the evmux command under a low open-files limit', () => {
  test('it exits 1 naming the limit and what it needs, instead of a stack from Node\'s module loader', async (t) => {
    const cli = CliProcess.start(t, ['--upstream', 'nowhere=ws://127.0.0.1:1', '--port', '0'], { launcher: ['prlimit', '--nofile=64'] });
    const { code, stderr, stdout } = await cli.exit(20_000);
    assert.equal(code, 1, `exit code; stdout: ${stdout}`);
    assert.match(stderr, /^evmux: the open-files limit is 64 with \d+ open already, and starting needs 96 free: raise the open-files limit \(ulimit -n; .*\)\n$/);
  });

  test('the demo, which needs more, exits 1 the same way before it loads its devnet, where Node\'s loader failed now and then with a false "Cannot find package"', async (t) => {
    const cli = CliProcess.start(t, ['--demo', '--port', '0'], { launcher: ['prlimit', '--nofile=160'] });
    const { code, stderr, stdout } = await cli.exit(20_000);
    assert.equal(code, 1, `exit code; stdout: ${stdout}`);
    assert.match(stderr, /^evmux: the open-files limit is 160 with \d+ open already, and the demo needs 200 free: raise the open-files limit \(ulimit -n; .*\)\n$/);
  });
});
