import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { functionCosts, PerfMap, summarize } from '../../bench/callgrind-functions.js';

test('a perf map names generated code by its newest line: code space is reused', () => {
  const map = new PerfMap(['1000 100 JS:*old a.js:1:1', '2000 10 Builtin:LoadIC', '1040 20 JS:*new b.js:2:2', ''].join('\n'));
  assert.equal(map.nameAt(0x1000), 'JS:*old a.js:1:1');
  assert.equal(map.nameAt(0x103f), 'JS:*old a.js:1:1');
  assert.equal(map.nameAt(0x1040), 'JS:*new b.js:2:2');
  assert.equal(map.nameAt(0x105f), 'JS:*new b.js:2:2');
  assert.equal(map.nameAt(0x1060), 'JS:*old a.js:1:1', 'the older piece around the newer one still names the rest');
  assert.equal(map.nameAt(0x10ff), 'JS:*old a.js:1:1');
  assert.equal(map.nameAt(0x1100), undefined);
  assert.equal(map.nameAt(0x200f), 'Builtin:LoadIC', 'sizes are hex too');
  assert.equal(map.nameAt(0x2010), undefined);
  assert.equal(map.nameAt(0xfff), undefined);
});

test("a dump's self costs go to the generated code each instruction lies in, or to its native symbol; calls' inclusive costs are skipped", () => {
  const dir = mkdtempSync(join(tmpdir(), 'evmux-cg-test-'));
  try {
    const dump = join(dir, 'cg.out');
    writeFileSync(
      dump,
      [
        '# callgrind format',
        'positions: instr line',
        'events: Ir D1mr',
        'ob=(1) /usr/bin/node',
        'fn=(1) v8::Invoke',
        '0x500 0 10 1',
        '+4 0 5',
        'cfn=(2) 0x0000000000001000',
        'calls=3 0x1000 0',
        '+2 0 999 99',
        'ob=(2) ???',
        'fn=(2)',
        '0x1000 0 7 2',
        '+0x44 0 3',
        '* 0 1 1',
        'fn=(3) 0x0000000000002000',
        '0x2000 0 4',
        'summary: 30 4',
        '',
      ].join('\n'),
    );
    const map = new PerfMap('1000 40 JS:*first a.js:1:1\n1040 40 JS:*second a.js:9:1\n');
    const costs = functionCosts(dump, map);
    assert.deepEqual(costs.events, ['Ir', 'D1mr']);
    assert.deepEqual(Object.fromEntries(costs.byFunction), {
      'v8::Invoke [node]': [15, 1],
      'JS:*first a.js:1:1': [7, 2],
      'JS:*second a.js:9:1': [4, 1],
      '0x0000000000002000 [???]': [4, 0],
    });
    const summary = summarize(costs, 2, 2) as { byOrigin: Array<{ name: string; Ir: number }>; top: Record<string, Array<{ name: string; Ir: number }>> };
    assert.deepEqual(
      summary.byOrigin.map((r) => [r.name, r.Ir]),
      [
        ['native node', 7.5],
        ['JS (other)', 5.5],
        ['native ???', 2],
      ],
    );
    assert.deepEqual(
      summary.top.D1mr!.map((r) => r.name),
      ['JS:*first a.js:1:1', 'v8::Invoke [node]'],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
