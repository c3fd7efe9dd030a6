/**
 * How a moved logs filter's replay (filter-keeper.ts) reads the logs of the blocks its client
 * missed from a node that may refuse a range as more than it serves at once (isLogsRangeRefusal):
 * QuickNode's free plans serve 5 blocks, and a replay covers at least REORG_DEPTH. A range refused
 * is read again in halves, down to single blocks; a single block refused is skipped, as a logs
 * subscription skips one (logs-topic.ts). Failed as a whole, the move was tried again on every
 * poll over a range that only grew, and the filter's client got -32050 for good.
 */
import { replyResult, type UpstreamReply } from '../upstream/reply.js';
import { isLogsRangeRefusal } from '../upstream/errors.js';

export interface LogsReplay {
  /** eth_getLogs with the filter's criteria over blocks `from` through `to`. */
  read(from: bigint, to: bigint): Promise<UpstreamReply>;
  /** A single block the node refused: its logs are not handed over. */
  skipped(block: bigint, refusal: string): void;
  /** What the replay fails with when the node answers otherwise than with logs or a range refusal. */
  failed(reason: string): Error;
}

/** The logs of blocks `from` through `to`, in block order, as `replay.read` gives them. */
export async function replayLogs(replay: LogsReplay, from: bigint, to: bigint): Promise<unknown[]> {
  const reply = await replay.read(from, to);
  const logs = reply.error === undefined ? replyResult(reply) : undefined;
  if (Array.isArray(logs)) return logs;
  const refusal = reply.error?.message;
  if (refusal === undefined || !isLogsRangeRefusal(refusal)) throw replay.failed(refusal ?? 'no list');
  if (from === to) {
    replay.skipped(from, refusal);
    return [];
  }
  // One half after the other: a move makes one call at a time on its new node (FilterKeeper#movesTo).
  const middle = from + (to - from) / 2n;
  const lower = await replayLogs(replay, from, middle);
  return [...lower, ...(await replayLogs(replay, middle + 1n, to))];
}
