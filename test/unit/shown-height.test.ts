import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ShownHeight } from '../../src/upstream/shown-height.js';

test('before any block is shown, every head needs one', () => {
  const shown = new ShownHeight(5);
  assert.equal(shown.needsProof(100n), true);
});

test('a head up to the margin past the highest block shown stands; one further needs a block', () => {
  const shown = new ShownHeight(5);
  shown.note(100n);
  shown.note(90n); // a lower block shown later keeps the highest
  assert.equal(shown.needsProof(105n), false);
  assert.equal(shown.needsProof(106n), true);
  shown.note(120n);
  assert.equal(shown.needsProof(125n), false);
});

test('with health.maxLagBlocks 0, only a head at a block shown stands', () => {
  const shown = new ShownHeight(0);
  shown.note(7n);
  assert.equal(shown.needsProof(7n), false);
  assert.equal(shown.needsProof(8n), true);
});
