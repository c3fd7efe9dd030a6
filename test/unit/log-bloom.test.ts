import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bloomMayMatch, bloomQuery } from '../../src/subs/log-bloom.js';
import { parseSubscription, type LogFilter } from '../../src/subs/subscription-params.js';
import { EMPTY_BLOOM, logsBloom } from '../support/synthetic-logs.js';

const A = '0x00000000000000000000000000000000000000aa';
const B = '0x00000000000000000000000000000000000000bb';
const T1 = `0x${'11'.repeat(32)}` as const;
const T2 = `0x${'22'.repeat(32)}` as const;
const T3 = `0x${'33'.repeat(32)}` as const;

/** The normalized filter of a logs subscription, as the topic holds it. */
function filter(raw: Record<string, unknown>): LogFilter {
  return parseSubscription(['logs', raw]).filter ?? {};
}

// One block with a log of A (topics T1, T2): what the header's logsBloom says.
const bloom = logsBloom([{ address: A, topics: [T1, T2] }]);
const may = (raw: Record<string, unknown>, value: unknown = bloom): boolean => bloomMayMatch(value, bloomQuery(filter(raw)));

describe('bloomMayMatch', () => {
  it('matches what the block holds', () => {
    assert.equal(may({}), true);
    assert.equal(may({ address: A }), true);
    assert.equal(may({ address: [B, A] }), true, 'any address of the list');
    assert.equal(may({ address: A, topics: [T1] }), true);
    assert.equal(may({ topics: [null, T2] }), true, 'a wildcard position');
    assert.equal(may({ topics: [[T3, T1]] }), true, 'any topic of an OR-list');
  });

  it('rules out what the bloom proves absent', () => {
    assert.equal(may({ address: B }), false);
    assert.equal(may({ address: A, topics: [T3] }), false);
    assert.equal(may({ topics: [T1, T3] }), false, 'every constrained position must match');
  });

  it('an empty bloom rules out every filter, even match-all', () => {
    assert.equal(may({}, EMPTY_BLOOM), false);
    assert.equal(may({ address: A }, EMPTY_BLOOM), false);
  });

  it('a missing or malformed bloom proves nothing', () => {
    assert.equal(bloomMayMatch(undefined, bloomQuery(filter({ address: B }))), true);
    assert.equal(may({ address: B }, '0x1234'), true);
    assert.equal(may({ address: B }, 42), true);
  });
});
