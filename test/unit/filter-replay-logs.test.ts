import assert from 'node:assert/strict';
import { test } from 'node:test';
import { replayLogs, type LogsReplay } from '../../src/router/filter-replay-logs.js';
import { replyFromObject, resultReply, type UpstreamReply } from '../../src/upstream/reply.js';

/** A node with one log per block that serves at most `cap` blocks at once (QuickNode's words), and refuses `refused` blocks outright. */
function cappedNode(cap: bigint, refused: ReadonlySet<bigint> = new Set()) {
  const reads: Array<[bigint, bigint]> = [];
  const skipped: bigint[] = [];
  const replay: LogsReplay = {
    read(from, to): Promise<UpstreamReply> {
      reads.push([from, to]);
      const blocks = [...Array(Number(to - from + 1n)).keys()].map((k) => from + BigInt(k));
      if (to - from + 1n > cap || blocks.some((block) => refused.has(block))) {
        return Promise.resolve(replyFromObject({ error: { code: -32602, message: `eth_getLogs and eth_newFilter are limited to a ${cap} blocks range` } }));
      }
      return Promise.resolve(resultReply(blocks.map((block) => ({ blockNumber: `0x${block.toString(16)}` }))));
    },
    skipped: (block) => void skipped.push(block),
    failed: (reason) => new Error(`failed: ${reason}`),
  };
  return { replay, reads, skipped };
}

const numbers = (logs: unknown[]): number[] => logs.map((log) => Number((log as { blockNumber: string }).blockNumber));

test("a range the node refuses is read in halves until it serves them: every block's logs once, in order", async () => {
  const { replay, reads, skipped } = cappedNode(5n);
  assert.deepEqual(numbers(await replayLogs(replay, 100n, 112n)), [...Array(13).keys()].map((k) => 100 + k));
  assert.deepEqual(skipped, []);
  assert.ok(reads.every(([from, to]) => to >= from) && reads.length <= 7, `reads: ${JSON.stringify(reads.map(String))}`);
});

test('a range the node serves is read in one call', async () => {
  const { replay, reads } = cappedNode(20n);
  assert.equal((await replayLogs(replay, 1n, 12n)).length, 12);
  assert.equal(reads.length, 1);
});

test('a single block the node refuses is skipped and told, the others handed over', async () => {
  const { replay, skipped } = cappedNode(5n, new Set([7n]));
  assert.deepEqual(numbers(await replayLogs(replay, 1n, 12n)), [1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12]);
  assert.deepEqual(skipped, [7n]);
});

test('any other error fails the replay, not split', async () => {
  const reads: unknown[] = [];
  const replay: LogsReplay = {
    read: () => {
      reads.push(1);
      return Promise.resolve(replyFromObject({ error: { code: -32000, message: 'header not found' } }));
    },
    skipped: () => assert.fail('nothing to skip'),
    failed: (reason) => new Error(`failed: ${reason}`),
  };
  await assert.rejects(replayLogs(replay, 1n, 12n), /failed: header not found/);
  assert.equal(reads.length, 1);
});
