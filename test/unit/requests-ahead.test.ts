import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { RequestsAhead } from '../../src/upstream/requests-ahead.js';

describe('RequestsAhead', () => {
  it('marks nothing when the requests ahead are no backlog', () => {
    const ahead = new RequestsAhead();
    assert.equal(ahead.mark(10, 4_000), undefined);
    assert.equal(ahead.progressed(undefined), false);
  });

  it('sees answers to requests sent before the mark, once each, and not to those sent after', () => {
    const ahead = new RequestsAhead();
    const mark = ahead.mark(10, 1_000_000)!;
    ahead.answered(12);
    assert.equal(ahead.progressed(mark), false, 'an answer to a request sent after the mark');
    ahead.answered(3);
    ahead.answered(4);
    assert.equal(ahead.progressed(mark), true);
    assert.equal(ahead.progressed(mark), false, 'no answer since progressed last asked');
    ahead.answered(9);
    assert.equal(ahead.progressed(mark), true);
  });

  it('forgets a mark released, and every mark when the socket closes', () => {
    const ahead = new RequestsAhead();
    const released = ahead.mark(10, 1_000_000)!;
    const cleared = ahead.mark(10, 1_000_000)!;
    ahead.release(released);
    ahead.answered(1);
    assert.equal(ahead.progressed(released), false);
    assert.equal(ahead.progressed(cleared), true);
    ahead.clear();
    ahead.answered(2);
    assert.equal(ahead.progressed(cleared), false);
  });
});
