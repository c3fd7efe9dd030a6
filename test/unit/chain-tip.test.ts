import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChainTip } from '../../src/upstream/chain-tip.js';
import type { TrackedHead } from '../../src/upstream/head.js';

const head = (number: number, branch: string): TrackedHead => ({
  number: BigInt(number),
  hash: `0x${branch.repeat(60)}${number.toString(16).padStart(4, '0')}`,
  parentHash: `0x${'0'.repeat(64)}`,
  raw: {},
});

test('a node that replaces its own head at its height makes the new block the tip to read from, until a higher block comes', () => {
  const tip = new ChainTip();
  tip.note(head(7, 'b'), head(6, 'b'));
  assert.equal(tip.replacementAt(7n), undefined, 'a tip that replaced nothing');
  tip.note(head(7, 'b'), undefined);
  tip.note(head(7, 'c'), head(7, 'b'));
  assert.equal(tip.replacementAt(7n), head(7, 'c').hash);
  assert.equal(tip.replacementAt(6n), undefined, 'only at its height');
  tip.note(head(7, 'b'), head(6, 'b'));
  assert.equal(tip.replacementAt(7n), head(7, 'c').hash, 'a node late with the replaced block does not bring it back');
  tip.note(head(8, 'c'), head(7, 'c'));
  assert.equal(tip.replacementAt(8n), undefined);
  assert.equal(tip.replacementAt(7n), undefined);
});

test('a node that announces another block at the tip height, having announced none there, replaces nothing', () => {
  const tip = new ChainTip();
  tip.note(head(7, 'b'), head(6, 'b'));
  tip.note(head(7, 'x'), head(6, 'x'));
  assert.equal(tip.replacementAt(7n), undefined);
  tip.note(head(6, 'y'), head(5, 'y'));
  assert.equal(tip.replacementAt(7n), undefined, 'nor a lower head');
});
