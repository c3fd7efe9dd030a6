/**
 * The evmux command with bad flags and bad config files: each kind of mistake exits with code 2
 * and a message on stderr naming the key or flag and what is wrong. A good YAML file starts,
 * answers /healthz, and stops cleanly on SIGTERM.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { FakeNode } from '../support/fake-node.js';
import { CliProcess, tempFiles } from '../support/cli-process.js';

interface Mistake {
  name: string;
  files?: Record<string, string>;
  /** command-line arguments; `dir` is where `files` were written */
  args: (dir: string) => string[];
  stderr: RegExp;
}

const UPSTREAM = 'upstreams:\n  - url: ws://127.0.0.1:1\n';

const mistakes: Mistake[] = [
  {
    name: '--upstream beside --demo, which runs nodes of its own',
    args: () => ['--demo', '--upstream', 'ws://127.0.0.1:8546'],
    stderr: /^evmux: --demo runs its own nodes: give --upstream without --demo$/m,
  },
  {
    name: 'unknown top-level key',
    files: { 'c.yaml': `${UPSTREAM}requestTimeoutMillis: 100\n` },
    args: (dir) => ['--config', join(dir, 'c.yaml')],
    stderr: /config error: requestTimeoutMillis: unknown key/,
  },
  {
    name: 'unknown nested key',
    files: { 'c.yaml': `${UPSTREAM}health:\n  probeIntervalMS: 100\n` },
    args: (dir) => ['--config', join(dir, 'c.yaml')],
    stderr: /config error: health\.probeIntervalMS: unknown key/,
  },
  {
    name: 'unknown key in an upstream',
    files: { 'c.yaml': 'upstreams:\n  - url: ws://127.0.0.1:1\n    wieght: 2\n' },
    args: (dir) => ['--config', join(dir, 'c.yaml')],
    stderr: /config error: upstreams\[0\]\.wieght: unknown key/,
  },
  {
    name: 'wrong type',
    files: { 'c.yaml': `${UPSTREAM}requestTimeoutMs: fast\n` },
    args: (dir) => ['--config', join(dir, 'c.yaml')],
    stderr: /config error: requestTimeoutMs: Expected number, received string/,
  },
  {
    name: 'out-of-range number',
    files: { 'c.json': JSON.stringify({ upstreams: [{ url: 'ws://127.0.0.1:1' }], limits: { maxBatchSize: 0 } }) },
    args: (dir) => ['--config', join(dir, 'c.json')],
    stderr: /config error: limits\.maxBatchSize: Number must be greater than or equal to 1/,
  },
  {
    name: 'port out of range',
    args: () => ['--upstream', 'ws://127.0.0.1:1', '--port', '70000'],
    stderr: /config error: port: Number must be less than or equal to 65535/,
  },
  {
    name: 'value not in the allowed set',
    files: { 'c.yaml': `${UPSTREAM}balancer: fastest\n` },
    args: (dir) => ['--config', join(dir, 'c.yaml')],
    stderr: /config error: balancer: Invalid enum value\. Expected 'least-connections' \| 'round-robin' \| 'weighted-round-robin', received 'fastest'/,
  },
  {
    name: 'bad --log-level',
    args: () => ['--upstream', 'ws://127.0.0.1:1', '--log-level', 'loud'],
    stderr: /config error: logLevel: Invalid enum value.*received 'loud'/,
  },
  {
    name: 'http:// upstream URL instead of ws://',
    args: () => ['--upstream', 'http://127.0.0.1:8545'],
    stderr: /config error: upstreams\[0\]\.url: must be a ws:\/\/ or wss:\/\/ URL/,
  },
  {
    name: 'duplicate upstream names',
    args: () => ['--upstream', 'a=ws://127.0.0.1:1', '--upstream', 'a=ws://127.0.0.1:2'],
    stderr: /config error: upstreams\[1\]\.name: duplicate upstream name "a"/,
  },
  {
    name: 'environment variable not set',
    files: { 'c.yaml': 'upstreams:\n  - url: ws://127.0.0.1:1\n    headers:\n      Authorization: Bearer ${EVMUX_TEST_UNSET_VARIABLE}\n' },
    args: (dir) => ['--config', join(dir, 'c.yaml')],
    stderr: /config error: upstreams\[0\]\.headers\.Authorization: environment variable EVMUX_TEST_UNSET_VARIABLE is not set/,
  },
  {
    name: 'handshake header in upstream headers',
    files: { 'c.yaml': 'upstreams:\n  - url: ws://127.0.0.1:1\n    headers:\n      Upgrade: h2c\n' },
    args: (dir) => ['--config', join(dir, 'c.yaml')],
    stderr: /config error: upstreams\[0\]\.headers\.Upgrade: is part of the WebSocket handshake and set by evmux/,
  },
  {
    name: 'config file without upstreams',
    files: { 'c.yaml': 'port: 0\n' },
    args: (dir) => ['--config', join(dir, 'c.yaml')],
    stderr: /config error: upstreams: is required/,
  },
  {
    name: 'config file with an empty upstream list',
    files: { 'c.json': '{"upstreams": []}' },
    args: (dir) => ['--config', join(dir, 'c.json')],
    stderr: /config error: upstreams: needs at least one upstream/,
  },
  {
    name: 'unreadable config file',
    args: (dir) => ['--config', join(dir, 'missing.yaml')],
    stderr: /config error: cannot read config file .*missing\.yaml: ENOENT/,
  },
  {
    name: 'invalid YAML',
    files: { 'c.yaml': 'upstreams: [ { url: ws://127.0.0.1:1 }\nport: 1\n' },
    args: (dir) => ['--config', join(dir, 'c.yaml')],
    stderr: /config error: config file .*c\.yaml is not valid YAML/,
  },
  {
    name: 'invalid JSON',
    files: { 'c.json': '{"upstreams": [{"url": "ws://127.0.0.1:1"}],}' },
    args: (dir) => ['--config', join(dir, 'c.json')],
    stderr: /config error: config file .*c\.json is not valid JSON/,
  },
  {
    name: 'config file that is not an object',
    files: { 'c.yaml': '- ws://127.0.0.1:1\n' },
    args: (dir) => ['--config', join(dir, 'c.yaml')],
    stderr: /config error: config file .*c\.yaml must contain an object of settings/,
  },
  {
    name: 'bad --port flag',
    args: () => ['--upstream', 'ws://127.0.0.1:1', '--port', 'eighty'],
    stderr: /--port: expected a number from 0 to 65535, got "eighty"/,
  },
  {
    name: 'unknown flag',
    args: () => ['--upstream', 'ws://127.0.0.1:1', '--upstreams', 'ws://127.0.0.1:2'],
    stderr: /Unknown option '--upstreams'/,
  },
];

describe('config mistakes exit 2 naming the key or flag', { concurrency: 3 }, () => {
  for (const mistake of mistakes) {
    test(mistake.name, async (t) => {
      const dir = tempFiles(t, mistake.files ?? {});
      const { code, stderr, stdout } = await CliProcess.start(t, mistake.args(dir)).exit(15_000);
      assert.equal(code, 2, `exit code; stderr: ${stderr}`);
      assert.match(stderr, mistake.stderr);
      // Refused before anything started: no listening socket, no devnet.
      assert.doesNotMatch(stdout, /evmux listening|anvil/);
    });
  }
});

describe('a good config file', { concurrency: 2 }, () => {
  test('starts, answers /healthz and /readyz, and exits 0 on SIGTERM', async (t) => {
    const node = await FakeNode.start();
    t.after(() => node.close());
    const dir = tempFiles(t, {
      'evmux.yaml': [
        'host: 127.0.0.1',
        'port: 0',
        'logLevel: info',
        'upstreams:',
        `  - name: fake`,
        `    url: ${node.url}`,
        '    connections: 1',
        'health:',
        '  probeIntervalMs: 200',
        'limits:',
        '  maxBatchSize: 10',
        '',
      ].join('\n'),
    });
    const cli = CliProcess.start(t, ['--config', join(dir, 'evmux.yaml')]);
    const base = `http://127.0.0.1:${await cli.port()}`;
    const healthz = await fetch(`${base}/healthz`);
    assert.equal(healthz.status, 200);
    assert.deepEqual(await healthz.json(), { status: 'ok' });
    let ready = 0;
    for (let i = 0; i < 100 && ready !== 200; i++) {
      ready = (await fetch(`${base}/readyz`)).status;
      if (ready !== 200) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(ready, 200, '/readyz with a reachable upstream');
    const status = (await (await fetch(`${base}/status`)).json()) as { upstreams: Array<{ name: string }> };
    assert.deepEqual(status.upstreams.map((upstream) => upstream.name), ['fake'], 'the upstream name from the file');

    const started = Date.now();
    cli.child.kill('SIGTERM');
    const { code, signal } = await cli.exit(5_000);
    assert.equal(signal, null);
    assert.equal(code, 0);
    assert.ok(Date.now() - started < 4_000, `exit took ${Date.now() - started} ms`);
  });

  test('/readyz is 503 while no upstream is reachable, /healthz still 200', async (t) => {
    const cli = CliProcess.start(t, ['--upstream', 'nowhere=ws://127.0.0.1:1', '--port', '0']);
    const base = `http://127.0.0.1:${await cli.port()}`;
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    const readyz = await fetch(`${base}/readyz`);
    assert.equal(readyz.status, 503);
    assert.deepEqual(await readyz.json(), { ready: false, usableUpstreams: 0, accepting: true });
    cli.child.kill('SIGTERM');
    assert.equal((await cli.exit(5_000)).code, 0);
  });

  test('SIGHUP (its terminal closed) stops it as SIGTERM does: drained, exit 0, not killed by the signal', async (t) => {
    const cli = CliProcess.start(t, ['--upstream', 'nowhere=ws://127.0.0.1:1', '--port', '0']);
    await cli.port();
    cli.child.kill('SIGHUP');
    const { code, signal, stdout } = await cli.exit(5_000);
    assert.deepEqual({ code, signal }, { code: 0, signal: null });
    assert.match(stdout, /"signal":"SIGHUP","msg":"signal received"/);
  });
});
