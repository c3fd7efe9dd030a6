import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { SEMI_SPACE_MB, YOUNG_GENERATION_FLAGS } from '../../src/runtime/young-generation.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = `${ROOT}src/cli.ts`;

describe('young generation flags', () => {
  it('are what the evmux command passes node in its shebang', () => {
    const shebang = readFileSync(CLI, 'utf8').split('\n', 1)[0];
    assert.equal(shebang, `#!/usr/bin/env -S node ${YOUNG_GENERATION_FLAGS.join(' ')}`);
  });

  it(`give node a ${SEMI_SPACE_MB} MB semi-space, as semiSpaceMb() reads it (V8 neither ignores nor clips them)`, () => {
    const probe = "import('./src/runtime/young-generation.ts').then((m) => process.stdout.write(String(m.semiSpaceMb())))";
    const run = (flags: readonly string[]): number => Number(execFileSync(process.execPath, [...flags, '--import', 'tsx', '-e', probe], { cwd: ROOT, encoding: 'utf8' }));
    assert.equal(run(YOUNG_GENERATION_FLAGS), SEMI_SPACE_MB);
    assert.ok(run([]) < SEMI_SPACE_MB, 'node without the flags starts smaller');
  });
});
