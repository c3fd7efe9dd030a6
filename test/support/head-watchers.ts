/**
 * Clients that each hold one newHeads subscription through a test's faults, and the check at the
 * end that every one of them saw the canonical chain without a gap or a duplicate.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { canonicalHashes } from './node-rpc.js';
import { headProblems, StreamClient, waitUntil, type GreetingWindow } from './stream-recorder.js';

export interface HeadWatcher {
  client: StreamClient;
  id: string;
  greeting: GreetingWindow;
}

/** `count` clients of `url`, one after another, each subscribed and greeted; closed when the test ends. */
export async function watchHeads(t: TestContext, url: string, count: number, chain: { readonly blockNumber: number }): Promise<HeadWatcher[]> {
  const opened: StreamClient[] = [];
  t.after(() => opened.forEach((client) => client.close()));
  const watchers: HeadWatcher[] = [];
  for (let i = 0; i < count; i++) {
    const client = await StreamClient.open(url, `c${i}`);
    opened.push(client);
    const low = BigInt(chain.blockNumber) - 1n;
    const id = await client.subscribe(['newHeads']);
    await client.first(id);
    watchers.push({ client, id, greeting: { low, high: BigInt(chain.blockNumber) + 1n } });
  }
  return watchers;
}

/** Every watcher reaches the chain's head and saw no gap, no duplicate, and is still connected. */
export async function assertWatchedChain(watchers: readonly HeadWatcher[], chain: { readonly blockNumber: number }, nodeHttpUrl: string): Promise<void> {
  const end = BigInt(chain.blockNumber);
  await waitUntil('every client at the head', () => watchers.every(({ client, id }) => client.tip(id) >= end), 10_000);
  const canonical = await canonicalHashes(nodeHttpUrl, watchers[0]!.greeting.low, end);
  for (const { client, id, greeting } of watchers) {
    assert.deepEqual(headProblems(client.heads(id), canonical, end, greeting), [], client.label);
    assert.equal(client.closeCode, undefined, `${client.label} still connected`);
  }
}
