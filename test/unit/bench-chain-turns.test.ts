import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeChain, parseTurns, turnsFlag, type Turns } from '../../bench/chain.js';

const GENESIS = 1_000_000;
const chain = (turns?: Turns): FakeChain =>
  new FakeChain({ seed: 's', genesisMs: GENESIS, intervalMs: 250, blockBytes: 1000, ...(turns !== undefined && { turns }) });
const dues = (c: FakeChain, count: number): number[] => Array.from({ length: count }, (_, i) => c.dueMs(i + 1) - GENESIS);

describe('bench: a fake chain that takes turns', () => {
  it('without turns, a head every interval', () => {
    assert.deepEqual(dues(chain(), 4), [250, 500, 750, 1000]);
  });

  it('two chains on one genesis alternate, each at its full rate within its own turn', () => {
    const first = dues(chain({ count: 2, index: 0, ms: 1000 }), 8);
    const second = dues(chain({ count: 2, index: 1, ms: 1000 }), 8);
    assert.deepEqual(first, [250, 500, 750, 1000, 2250, 2500, 2750, 3000]);
    assert.deepEqual(second, [1250, 1500, 1750, 2000, 3250, 3500, 3750, 4000]);
    const all = [...first, ...second].sort((a, b) => a - b);
    assert.equal(new Set(all).size, all.length, 'never due at the same moment');
    for (let i = 1; i < all.length; i++) assert.equal(all[i]! - all[i - 1]!, 250, 'together, one head per interval');
  });

  it('headAt and dueMs agree: head n is the head from its due time until the next one', () => {
    for (const turns of [undefined, { count: 2, index: 1, ms: 2500 }, { count: 3, index: 2, ms: 1000 }]) {
      const c = chain(turns);
      for (let n = 1; n < 120; n++) {
        assert.equal(c.headAt(c.dueMs(n)), n, `head at the due time of ${n}`);
        assert.equal(c.headAt(c.dueMs(n) - 1), n - 1, `head just before the due time of ${n}`);
      }
      assert.equal(c.headAt(GENESIS - 5000), 0, 'nothing before genesis');
    }
  });

  it('reads and writes the --turns flag, and names what is wrong with a bad one', () => {
    assert.deepEqual(parseTurns('2:1:2500'), { count: 2, index: 1, ms: 2500 });
    assert.equal(turnsFlag({ count: 2, index: 1, ms: 2500 }), '2:1:2500');
    for (const bad of ['2:2:2500', '2:1', '0:0:10', '2:0:0', 'a:b:c']) {
      assert.throws(() => parseTurns(bad), /--turns must be COUNT:INDEX:MS/, bad);
    }
  });
});
