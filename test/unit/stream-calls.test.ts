import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HEADER_CACHE_SIZE, StreamCalls } from '../../src/subs/stream-calls.js';
import { noTelemetry, type RequestOutcome } from '../../src/telemetry.js';
import { NodeRpcError, UpstreamFailure } from '../../src/upstream/errors.js';
import type { Upstream } from '../../src/upstream/upstream.js';

const hash = (n: number): string => `0x${n.toString(16).padStart(64, '0')}`;
const block = (n: number): Record<string, unknown> => ({ number: `0x${n.toString(16)}`, hash: hash(n), parentHash: hash(n - 1), transactions: [], size: '0x1' });

/** An upstream whose calls wait until the test answers them, in the order they were sent. */
function heldUpstream(): { upstream: Upstream; sent: Array<{ method: string; params: unknown[]; answer: (value: unknown) => void; fail: (error: Error) => void }> } {
  const sent: Array<{ method: string; params: unknown[]; answer: (value: unknown) => void; fail: (error: Error) => void }> = [];
  const upstream = {
    name: 'held',
    call: (method: string, params: unknown[]) => new Promise((answer, fail) => sent.push({ method, params, answer, fail })),
  } as unknown as Upstream;
  return { upstream, sent };
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('StreamCalls', () => {
  it('keeps at most `concurrency` calls in flight; the rest wait their turn, in order, and none fails for waiting', async () => {
    const { upstream, sent } = heldUpstream();
    const calls = new StreamCalls(upstream, { concurrency: 2, timeoutMs: 1000, telemetry: noTelemetry });
    const outcomes = Promise.allSettled([1, 2, 3, 4, 5].map((n) => calls.logs({ blockHash: hash(n) })));
    await turn();
    assert.equal(sent.length, 2);
    assert.equal(calls.waiting, 3);
    sent[1]!.answer([]);
    await turn();
    assert.deepEqual(sent.map((call) => (call.params[0] as { blockHash: string }).blockHash), [hash(1), hash(2), hash(3)]);
    sent[0]!.fail(new Error('node error'));
    await turn();
    for (const call of sent.slice(2)) call.answer([]);
    await turn();
    for (const call of sent.slice(4)) call.answer([]);
    assert.deepEqual((await outcomes).map((outcome) => outcome.status), ['rejected', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
    assert.equal(sent.length, 5);
    assert.equal(calls.waiting, 0);
  });

  it('sends a header call before the logs calls waiting: streams wait on headers, not on replays', async () => {
    const { upstream, sent } = heldUpstream();
    const calls = new StreamCalls(upstream, { concurrency: 1, timeoutMs: 1000, telemetry: noTelemetry });
    const replays = [1, 2, 3].map((n) => calls.logs({ blockHash: hash(n) }));
    const head = calls.latest();
    const parent = calls.byHash(hash(9));
    for (let answered = 0; answered < 5; answered++) {
      await turn();
      sent[answered]!.answer(sent[answered]!.method === 'eth_getLogs' ? [] : block(10 - answered));
    }
    await Promise.all([...replays, head, parent]);
    assert.deepEqual(
      sent.map((call) => call.method),
      ['eth_getLogs', 'eth_getBlockByNumber', 'eth_getBlockByHash', 'eth_getLogs', 'eth_getLogs'],
    );
  });

  it('gives every caller asking for the latest block while one call is out that call, and asks again after it', async () => {
    const { upstream, sent } = heldUpstream();
    const calls = new StreamCalls(upstream, { concurrency: 4, timeoutMs: 1000, telemetry: noTelemetry });
    const together = [calls.latest(), calls.latest(), calls.latest()];
    await turn();
    assert.equal(sent.length, 1);
    assert.deepEqual([sent[0]!.method, sent[0]!.params], ['eth_getBlockByNumber', ['latest', false]]);
    sent[0]!.answer(block(7));
    const heads = await Promise.all(together);
    assert.deepEqual(heads.map((head) => head?.number), [7n, 7n, 7n]);
    assert.equal(heads[0]!.raw['transactions'], undefined, 'shaped like a newHeads notification');
    const later = calls.latest();
    await turn();
    assert.equal(sent.length, 2);
    sent[1]!.answer(block(8));
    assert.equal((await later)?.number, 8n);
  });

  it('asks for a height as the node has it now: one call for callers together, asked again later (a reorg changes it)', async () => {
    const { upstream, sent } = heldUpstream();
    const calls = new StreamCalls(upstream, { concurrency: 4, timeoutMs: 1000, telemetry: noTelemetry });
    const together = [calls.byNumber(12n), calls.byNumber(12n)];
    await turn();
    assert.equal(sent.length, 1);
    assert.deepEqual([sent[0]!.method, sent[0]!.params], ['eth_getBlockByNumber', ['0xc', false]]);
    sent[0]!.answer(block(12));
    assert.deepEqual((await Promise.all(together)).map((head) => head?.hash), [hash(12), hash(12)]);
    const later = calls.byNumber(12n);
    await turn();
    assert.equal(sent.length, 2);
    sent[1]!.answer(null);
    assert.equal(await later, null);
    assert.equal((await calls.byHash(hash(12)))?.number, 12n, 'the header found is kept by hash');
    assert.equal(sent.length, 2);
  });

  it('remembers headers by hash, but not a miss or a failure', async () => {
    const { upstream, sent } = heldUpstream();
    const calls = new StreamCalls(upstream, { concurrency: 4, timeoutMs: 1000, telemetry: noTelemetry });
    const first = [calls.byHash(hash(5)), calls.byHash(hash(5).toUpperCase().replace('0X', '0x'))];
    await turn();
    assert.equal(sent.length, 1, 'one call for requests made together');
    sent[0]!.answer(block(5));
    await Promise.all(first);
    assert.equal((await calls.byHash(hash(5)))?.number, 5n);
    assert.equal(sent.length, 1, 'then from the cache');

    const missing = calls.byHash(hash(6));
    await turn();
    sent[1]!.answer(null);
    assert.equal(await missing, null);
    const failing = calls.byHash(hash(6));
    await turn();
    sent[2]!.fail(new Error('timeout'));
    await assert.rejects(failing, /timeout/);
    const found = calls.byHash(hash(6));
    await turn();
    assert.equal(sent.length, 4, 'a miss and a failure are asked again');
    sent[3]!.answer(block(6));
    assert.equal((await found)?.number, 6n);
  });

  it('forgets the oldest header past its size', async () => {
    const answered: string[] = [];
    const upstream = {
      name: 'instant',
      call: (_method: string, params: unknown[]) => {
        answered.push(params[0] as string);
        return Promise.resolve(block(Number(BigInt(params[0] as string))));
      },
    } as unknown as Upstream;
    const calls = new StreamCalls(upstream, { concurrency: 1, timeoutMs: 1000, telemetry: noTelemetry });
    for (let n = 1; n <= HEADER_CACHE_SIZE + 1; n++) await calls.byHash(hash(n));
    await calls.byHash(hash(2));
    await calls.byHash(hash(1));
    assert.equal(answered.length, HEADER_CACHE_SIZE + 2, 'block 1 was fetched again, block 2 was not');
    assert.equal(answered.at(-1), hash(1));
  });

  it("reports each call's outcome as a client's call is: the node's answer, its error, a timeout, an answer over the limit", async () => {
    const { upstream, sent } = heldUpstream();
    const finished: string[] = [];
    const telemetry = { ...noTelemetry, requestFinished: (method: string, node: string, outcome: RequestOutcome) => finished.push(`${method} ${node} ${outcome}`) };
    const calls = new StreamCalls(upstream, { concurrency: 4, timeoutMs: 1000, telemetry });
    const outcomes = Promise.allSettled([calls.logs({ blockHash: hash(1) }), calls.logs({ blockHash: hash(2) }), calls.byHash(hash(3)), calls.logs({ blockHash: hash(4) })]);
    await turn();
    sent[0]!.answer([]);
    sent[1]!.fail(new NodeRpcError('held: eth_getLogs failed: limit exceeded', -32005, 'limit exceeded'));
    sent[2]!.fail(new UpstreamFailure('EVMUX_TIMEOUT', 'held: timed out', 'held'));
    sent[3]!.fail(new UpstreamFailure('EVMUX_ANSWER_TOO_LARGE', 'held: too large', 'held', false));
    await outcomes;
    assert.deepEqual(finished, ['eth_getLogs held ok', 'eth_getLogs held rpc_error', 'eth_getBlockByHash held timeout', 'eth_getLogs held too_large']);
  });

  it('refuses a concurrency that is not a positive integer', () => {
    const { upstream } = heldUpstream();
    assert.throws(() => new StreamCalls(upstream, { concurrency: 0, timeoutMs: 1000, telemetry: noTelemetry }), /concurrency must be a positive integer, got 0/);
  });
});
