import assert from 'node:assert/strict';
import { test } from 'node:test';

import { FilterShares } from '../../src/subs/filter-shares.js';

test('an address holds at most max distinct filters; more subscriptions to one it holds are free; a filter counts until its last subscription goes', () => {
  const shares = new FilterShares(2);
  assert.equal(shares.claim('10.0.0.1', 'a'), true);
  assert.equal(shares.claim('10.0.0.1', 'b'), true);
  assert.equal(shares.claim('10.0.0.1', 'c'), false, 'a third distinct filter');
  assert.equal(shares.claim('10.0.0.1', 'a'), true, 'another subscription to a filter it holds');
  assert.equal(shares.claim('10.0.0.2', 'c'), true, 'another address has its own share');

  shares.release('10.0.0.1', 'a');
  assert.equal(shares.claim('10.0.0.1', 'c'), false, 'filter a is still held by its second subscription');
  shares.release('10.0.0.1', 'a');
  assert.equal(shares.claim('10.0.0.1', 'c'), true, 'room once the last subscription to a went');

  shares.release('10.0.0.1', 'unknown');
  shares.release('10.0.0.9', 'a');
  assert.equal(shares.claim('10.0.0.1', 'd'), false, 'releasing what was never claimed frees nothing');
});
