import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { expandEnvRefs } from '../../src/config/env-refs.js';
import { buildConfig, readConfigFile } from '../../src/config/load.js';
import { ConfigError } from '../../src/config/schema.js';

const env = { TOKEN: 's3cr3t', HOST: 'node-a.internal', EMPTY: '' };

function message(value: unknown): string {
  try {
    expandEnvRefs(value, env);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.message;
  }
  assert.fail('expected a ConfigError');
}

test('env refs: ${NAME} in strings, nested in objects and arrays, is replaced from the environment', () => {
  const raw = {
    port: 8547,
    upstreams: [{ url: 'wss://${HOST}/ws/${TOKEN}', headers: { Authorization: 'Bearer ${TOKEN}' }, weight: 2 }],
    methods: { allow: ['eth_*'] },
    host: null,
  };
  assert.deepEqual(expandEnvRefs(raw, env), {
    port: 8547,
    upstreams: [{ url: 'wss://node-a.internal/ws/s3cr3t', headers: { Authorization: 'Bearer s3cr3t' }, weight: 2 }],
    methods: { allow: ['eth_*'] },
    host: null,
  });
  assert.equal(expandEnvRefs('x${EMPTY}y', env), 'xy', 'a variable set to "" is used as set');
  assert.equal(expandEnvRefs('cost: $5 and $TOKEN and {TOKEN}', env), 'cost: $5 and $TOKEN and {TOKEN}', 'only ${...} is a reference');
  assert.equal(expandEnvRefs('literal $${TOKEN}', env), 'literal ${TOKEN}', '$${ escapes');
  assert.equal(expandEnvRefs('open $${TOKEN', env), 'open ${TOKEN', '$${ escapes without its }');
});

test('env refs: an unset variable or a malformed reference is an error naming the key', () => {
  assert.equal(
    message({ upstreams: [{ url: 'ws://x', headers: { Authorization: 'Bearer ${NODE_TOKEN}' } }] }),
    'upstreams[0].headers.Authorization: environment variable NODE_TOKEN is not set',
  );
  assert.match(message({ host: '${1HOST}' }), /^host: \$\{1HOST\} is not an environment variable reference/);
  assert.match(message({ host: '${}' }), /^host: \$\{\} is not an environment variable reference/);
  assert.match(message('${MISSING}'), /^\(root\): environment variable MISSING is not set/);
  // Sent on as written, it reached the node as text: a 401 with nothing in the log to say why.
  assert.equal(message({ upstreams: [{ url: 'wss://node.example/ws/${NODE_KEY' }] }), 'upstreams[0].url: ${NODE_KEY has no closing } (use ${NAME}, or $${ for a literal ${)');
  assert.match(message({ host: 'a${' }), /^host: \$\{ has no closing \}/);
  // A name every object answers to is not a variable that is set.
  for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
    assert.match(message(`Bearer \${${name}}`), new RegExp(`environment variable ${name} is not set`));
  }
});

test('env refs: a YAML or JSON file\'s references are taken by buildConfig, but not where a flag replaces them', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'evmux-env-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'c.yaml'), 'upstreams:\n  - url: ws://${HOST}:8546\n    headers:\n      Authorization: Bearer ${TOKEN}\n');
  writeFileSync(join(dir, 'c.json'), JSON.stringify({ upstreams: [{ url: 'ws://${HOST}:8546' }] }));
  const yaml = buildConfig(readConfigFile(join(dir, 'c.yaml')), {}, env).upstreams[0]!;
  assert.deepEqual([yaml.url, yaml.headers], ['ws://node-a.internal:8546', { Authorization: 'Bearer s3cr3t' }]);
  assert.equal(buildConfig(readConfigFile(join(dir, 'c.json')), {}, env).upstreams[0]!.url, 'ws://node-a.internal:8546');
  assert.throws(() => buildConfig(readConfigFile(join(dir, 'c.yaml')), {}, {}), /upstreams\[0\]\.url: environment variable HOST is not set/);
  // --upstream replaces the file's list: its references are not needed (they stopped evmux when unset).
  assert.equal(buildConfig(readConfigFile(join(dir, 'c.yaml')), { upstreams: ['ws://127.0.0.1:8545'] }, {}).upstreams[0]!.url, 'ws://127.0.0.1:8545');
  writeFileSync(join(dir, 'p.yaml'), 'port: ${UNSET_PORT}\nupstreams:\n  - url: ws://127.0.0.1:8545\n');
  assert.equal(buildConfig(readConfigFile(join(dir, 'p.yaml')), { port: 0 }, {}).port, 0);
  assert.equal(buildConfig(readConfigFile(join(dir, 'c.yaml')), { upstreams: ['ws://h/$${X}'] }, env).upstreams[0]!.url, 'ws://h/$${X}', 'flags are taken as they are');
});

test('env refs: a number setting takes a reference (variables are text), and a string setting keeps its digits', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'evmux-env-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'evmux.yaml');
  writeFileSync(path, 'port: ${PORT}\nlimits:\n  maxBatchSize: "${BATCH}"\nupstreams:\n  - name: ${NAME}\n    url: ws://127.0.0.1:8545\n');
  const config = buildConfig(readConfigFile(path), {}, { PORT: '9000', BATCH: '7', NAME: '42' });
  assert.equal(config.port, 9000);
  assert.equal(config.limits.maxBatchSize, 7);
  assert.equal(config.upstreams[0]!.name, '42');
  // Text that is not a whole number is still refused, naming the key; the rest is read.
  assert.throws(
    () => buildConfig(readConfigFile(path), {}, { PORT: '90x', BATCH: '7', NAME: 'a' }),
    (error: unknown) => error instanceof ConfigError && /^port: Expected number, received string$/.test(error.message),
  );
  assert.throws(
    () => buildConfig(readConfigFile(path), {}, { PORT: '9000', BATCH: '7.5', NAME: 'a' }),
    (error: unknown) => error instanceof ConfigError && /^limits\.maxBatchSize: Expected integer, received float$/.test(error.message),
  );
});
