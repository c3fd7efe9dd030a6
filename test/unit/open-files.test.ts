import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';

import { connectionCap, MIN_RESERVE, parseOpenFilesLimit } from '../../src/runtime/open-files.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            20000                65536                files
Max locked memory         8388608              8388608              bytes
`;

describe('open-files limit', () => {
  it('is the soft column of "Max open files"', () => {
    assert.equal(parseOpenFilesLimit(LIMITS), 20000);
  });

  it('is unknown when unlimited or missing', () => {
    assert.equal(parseOpenFilesLimit(LIMITS.replace('20000 ', 'unlimited ')), undefined);
    assert.equal(parseOpenFilesLimit('Limit Soft Limit\nMax processes 100 100 processes\n'), undefined);
    assert.equal(parseOpenFilesLimit(''), undefined);
  });

  it('is what a node started under prlimit reads (node raises the soft limit to the hard one)', () => {
    const script = "import('./src/runtime/open-files.ts').then((m) => console.log(m.openFilesLimit()))";
    const out = execFileSync('prlimit', ['--nofile=300:700', process.execPath, '--import', 'tsx', '-e', script], { encoding: 'utf8' });
    assert.equal(out.trim(), '700');
  });
});

describe('connection cap', () => {
  it('keeps a tenth of the limit back, at least MIN_RESERVE', () => {
    assert.equal(connectionCap(20_000), 18_000);
    assert.equal(connectionCap(1_048_576), 1_048_576 - 104_858);
    assert.equal(connectionCap(1024), 1024 - MIN_RESERVE);
    assert.equal(connectionCap(2 * MIN_RESERVE + 1), MIN_RESERVE + 1);
  });

  it('is half of a small limit, and none where the limit is unknown', () => {
    assert.equal(connectionCap(2 * MIN_RESERVE), MIN_RESERVE);
    assert.equal(connectionCap(200), 100);
    assert.equal(connectionCap(1), 1);
    assert.equal(connectionCap(undefined), undefined);
  });
});
