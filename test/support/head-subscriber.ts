import assert from 'node:assert/strict';
import type { AdvanceResult } from '../../src/subs/chain-cursor.js';
import type { TestHead } from './head-tree.js';

/**
 * A subscriber's model of the chain, built only from what the cursor tells it. Checks the stream
 * guarantees on every step: orphans are exactly the newest delivered heads, every delivered head
 * links to the previous one (no height skipped), and no hash is delivered while still live.
 */
export class HeadSubscriber {
  chain: TestHead[] = [];
  readonly live = new Set<string>();
  truncations = 0;

  apply(head: TestHead, result: AdvanceResult<TestHead>, context: string): void {
    const { deliver, orphaned, truncated } = result;
    for (const orphan of orphaned) {
      const top = this.chain.pop();
      assert.equal(top, orphan, `${context}: orphans must be the newest delivered heads, newest first`);
      this.live.delete(orphan.hash);
    }
    if (truncated) {
      this.truncations++;
      assert.deepEqual(deliver, [head], `${context}: a truncated step delivers just the head`);
      this.chain = [];
      this.live.clear();
    }
    for (const d of deliver) {
      const top = this.chain.at(-1);
      if (top !== undefined) {
        assert.equal(d.parentHash, top.hash, `${context}: ${d.label} must link to ${top.label}`);
        assert.equal(d.number, top.number + 1n, `${context}: no height skipped`);
      }
      assert.ok(!this.live.has(d.hash), `${context}: ${d.label} delivered twice`);
      this.chain.push(d);
      this.live.add(d.hash);
    }
    if (deliver.length > 0) assert.equal(deliver.at(-1), head, `${context}: a step ends at the head`);
  }
}
