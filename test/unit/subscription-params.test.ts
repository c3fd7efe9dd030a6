import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { InvalidParamsError } from '../../src/jsonrpc/errors.js';
import { defaultFilterLimits, parseSubscription, withinBlocks } from '../../src/subs/subscription-params.js';
import type { FilterLimits } from '../../src/subs/subscription-params.js';

const A1 = '0x' + 'a1'.repeat(20);
const A2 = '0x' + 'b2'.repeat(20);
const A3 = '0x' + '0c'.repeat(20);
const T1 = '0x' + 'd1'.repeat(32);
const T2 = '0x' + '1e'.repeat(32);
const T3 = '0x' + 'f3'.repeat(32);

function rejects(params: unknown, message: RegExp, limits?: FilterLimits): void {
  assert.throws(
    () => parseSubscription(params, limits ?? defaultFilterLimits),
    (error: unknown) => {
      assert.ok(error instanceof InvalidParamsError, `expected InvalidParamsError, got ${String(error)}`);
      assert.equal(error.code, -32602);
      assert.match(error.message, message);
      return true;
    },
  );
}

function fingerprint(params: unknown): string {
  return parseSubscription(params, defaultFilterLimits).fingerprint;
}

describe('parseSubscription: kinds', () => {
  it('accepts newHeads and syncing with no further params', () => {
    assert.deepEqual(parseSubscription(['newHeads'], defaultFilterLimits), {
      kind: 'newHeads',
      fingerprint: 'newHeads',
      streamKey: 'newHeads',
      upstreamParams: ['newHeads'],
    });
    assert.deepEqual(parseSubscription(['syncing']), { kind: 'syncing', fingerprint: 'syncing', streamKey: 'syncing', upstreamParams: ['syncing'] });
  });

  it('refuses extra params for newHeads and syncing', () => {
    rejects(['newHeads', {}], /newHeads subscriptions take no further params/);
    rejects(['syncing', null], /syncing subscriptions take no further params/);
  });

  it('takes an optional full-transactions boolean for newPendingTransactions', () => {
    const plain = { kind: 'newPendingTransactions', fullTransactions: false, fingerprint: 'newPendingTransactions', streamKey: 'newPendingTransactions', upstreamParams: ['newPendingTransactions'] };
    assert.deepEqual(parseSubscription(['newPendingTransactions']), plain);
    assert.deepEqual(parseSubscription(['newPendingTransactions', false]), plain);
    assert.deepEqual(parseSubscription(['newPendingTransactions', null]), plain);
    assert.deepEqual(parseSubscription(['newPendingTransactions', true]), {
      kind: 'newPendingTransactions',
      fullTransactions: true,
      fingerprint: 'newPendingTransactions:true',
      streamKey: 'newPendingTransactions:true',
      upstreamParams: ['newPendingTransactions', true],
    });
    rejects(['newPendingTransactions', 'yes'], /must be a boolean.*"yes"/);
    rejects(['newPendingTransactions', true, 1], /at most one more param/);
  });

  it('refuses params that are not an array, and missing or unknown kinds', () => {
    rejects({ 0: 'newHeads' }, /params must be an array/);
    rejects('newHeads', /params must be an array/);
    rejects(undefined, /params must be an array/);
    rejects([], /missing subscription kind/);
    rejects(['newBlocks'], /unsupported subscription kind "newBlocks"; expected one of "newHeads", "logs", "newPendingTransactions", "syncing"/);
    rejects([42], /unsupported subscription kind 42/);
    rejects(['NEWHEADS'], /unsupported subscription kind "NEWHEADS"/);
  });
});

describe('parseSubscription: logs', () => {
  it('treats a missing, null or empty filter as all logs', () => {
    for (const params of [['logs'], ['logs', null], ['logs', {}], ['logs', { address: [], topics: [] }], ['logs', { address: null, topics: null }]]) {
      assert.deepEqual(parseSubscription(params), { kind: 'logs', filter: {}, fingerprint: 'logs:{}', streamKey: 'logs:{}', upstreamParams: ['logs', {}] });
    }
  });

  it('lower-cases, sorts and de-duplicates addresses', () => {
    const spec = parseSubscription(['logs', { address: [A2, A1.toUpperCase().replace('0X', '0x'), A1, A3] }]);
    assert.deepEqual(spec.filter, { address: [A3, A1, A2] });
    assert.equal(spec.fingerprint, `logs:{"address":["${A3}","${A1}","${A2}"]}`);
    assert.deepEqual(spec.upstreamParams, ['logs', { address: [A3, A1, A2] }]);
  });

  it('normalizes a single address to a list, and sends one address as a string', () => {
    const single = parseSubscription(['logs', { address: A1.toUpperCase().replace('0X', '0x') }]);
    assert.deepEqual(single.filter, { address: [A1] });
    assert.deepEqual(single.upstreamParams, ['logs', { address: A1 }]);
    assert.equal(single.fingerprint, fingerprint(['logs', { address: [A1, A1] }]));
  });

  it('lower-cases topics, sorts and de-duplicates OR-lists, and wraps single topics', () => {
    const spec = parseSubscription(['logs', { topics: [T1.toUpperCase().replace('0X', '0x'), null, [T3, T2, T3]] }]);
    assert.deepEqual(spec.filter, { topics: [[T1], null, [T2, T3]] });
    assert.deepEqual(spec.upstreamParams, ['logs', { topics: [T1, null, [T2, T3]] }]);
    assert.equal(spec.fingerprint, `logs:{"topics":[["${T1}"],null,["${T2}","${T3}"]]}`);
  });

  it('gives equivalent filters one fingerprint', () => {
    const reference = fingerprint(['logs', { address: [A1, A2], topics: [T1, [T2, T3]] }]);
    const equivalents = [
      ['logs', { topics: [[T1], [T3, T2]], address: [A2, A1] }],
      ['logs', { address: [A2, A1, A2], topics: [T1, [T2, T3, T2]] }],
      ['logs', { address: [A1.toUpperCase().replace('0X', '0x'), A2], topics: [[T1, T1], [T2, T3]] }],
    ];
    for (const params of equivalents) assert.equal(fingerprint(params), reference, JSON.stringify(params));
  });

  it('gives different filters different fingerprints', () => {
    const fingerprints = [
      ['logs', {}],
      ['logs', { address: A1 }],
      ['logs', { address: [A1, A2] }],
      ['logs', { topics: [T1] }],
      ['logs', { topics: [null, T1] }],
      ['logs', { topics: [[T1, T2]] }],
      ['logs', { topics: [T1, T2] }],
      ['logs', { address: A1, topics: [T1] }],
      // A position more, even a wildcard, asks for a log with that many topics (geth, Nethermind).
      ['logs', { topics: [T1, null] }],
      ['logs', { topics: [T1, null, null, null] }],
      ['logs', { topics: [null] }],
    ].map(fingerprint);
    assert.equal(new Set(fingerprints).size, fingerprints.length);
    assert.notEqual(fingerprint(['newHeads']), fingerprint(['syncing']));
  });

  it('treats an empty OR-list or a null inside one as a wildcard position, like geth', () => {
    assert.deepEqual(parseSubscription(['logs', { topics: [[], T1] }]).filter, { topics: [null, [T1]] });
    assert.deepEqual(parseSubscription(['logs', { topics: [T1, [T2, null]] }]).filter, { topics: [[T1], null] });
    assert.equal(fingerprint(['logs', { topics: [[]] }]), 'logs:{"topics":[null]}');
    rejects(['logs', { topics: [[null, 'nope']] }], /topics\[0\]\[1\] must be a 32-byte/);
  });

  it('keeps trailing wildcard positions, which ask for logs with that many topics, and sends them on', () => {
    const spec = parseSubscription(['logs', { topics: [null, T1, null, null] }]);
    assert.deepEqual(spec.filter, { topics: [null, [T1], null, null] });
    assert.deepEqual(spec.upstreamParams, ['logs', { topics: [null, T1, null, null] }]);
  });

  it('refuses unknown keys, naming the key', () => {
    rejects(['logs', { blockHash: T1 }], /unsupported logs filter key "blockHash"/);
    rejects(['logs', { fromblock: '0x1' }], /"fromblock"/);
    rejects(['logs', JSON.parse('{"__proto__": {}}')], /"__proto__"/);
  });

  it('checks fromBlock and toBlock: tags but earliest bound nothing; block numbers bound the blocks delivered, a topic of their own on the node subscription of the filter without them', () => {
    const plain = parseSubscription(['logs', { address: A1 }]);
    for (const range of [{ fromBlock: 'latest' }, { fromBlock: 'earliest', toBlock: 'latest' }, { toBlock: 'finalized' }, { fromBlock: null }, { fromBlock: 'pending', toBlock: 'safe' }]) {
      const spec = parseSubscription(['logs', { address: A1, ...range }]);
      assert.equal(spec.fingerprint, plain.fingerprint, JSON.stringify(range));
      assert.equal(spec.blocks, undefined, JSON.stringify(range));
    }
    const bounded = (range: Record<string, unknown>) => parseSubscription(['logs', { address: A1, ...range }]);
    assert.deepEqual(bounded({ fromBlock: '0x1' }).blocks, { from: 1n });
    assert.deepEqual(bounded({ fromBlock: 'earliest', toBlock: '0xFF' }).blocks, { to: 255n });
    assert.deepEqual(bounded({ fromBlock: '0xf', toBlock: '0xf' }).blocks, { from: 15n, to: 15n });
    for (const range of [{ fromBlock: '0x1' }, { toBlock: '0xff' }, { fromBlock: '0x0', toBlock: '0x2' }]) {
      const spec = bounded(range);
      assert.notEqual(spec.fingerprint, plain.fingerprint, JSON.stringify(range));
      assert.deepEqual(spec.upstreamParams, plain.upstreamParams, JSON.stringify(range));
      assert.equal(spec.streamKey, plain.fingerprint, `${JSON.stringify(range)}: one eth_subscribe with the unbounded filter`);
    }
    assert.equal(bounded({ toBlock: '0xFF' }).fingerprint, bounded({ toBlock: '0xff', fromBlock: 'latest' }).fingerprint, 'one topic for one range, however written');
    assert.notEqual(bounded({ toBlock: '0x1' }).fingerprint, bounded({ fromBlock: '0x1' }).fingerprint);
    // As alloy-based nodes (anvil, reth) read them: 0X hex, tags in any case.
    assert.deepEqual(bounded({ fromBlock: '0X1F', toBlock: 'Latest' }).blocks, { from: 31n });
    assert.equal(bounded({ fromBlock: 'EARLIEST', toBlock: 'Finalized' }).fingerprint, plain.fingerprint);
    // earliest is block 0, as the node reads it: a toBlock of it delivers nothing past block 0,
    // and is not the unbounded filter's topic; from block 0 bounds nothing.
    assert.deepEqual(bounded({ toBlock: 'earliest' }).blocks, { to: 0n });
    assert.equal(bounded({ toBlock: 'Earliest' }).fingerprint, bounded({ toBlock: '0x0' }).fingerprint);
    assert.notEqual(bounded({ toBlock: 'earliest' }).fingerprint, plain.fingerprint);
    assert.equal(bounded({ fromBlock: '0x0' }).fingerprint, plain.fingerprint);
    rejects(['logs', { fromBlock: '0x1', toBlock: 'earliest' }], /logs filter fromBlock 1 is after toBlock 0/);
    rejects(['logs', { fromBlock: 1 }], /logs filter fromBlock must be a 0x-prefixed block number or a block tag, got 1/);
    rejects(['logs', { toBlock: '0x' }], /toBlock .* got "0x"/);
    rejects(['logs', { toBlock: '0x01' }], /toBlock .* got "0x01"/);
    rejects(['logs', { fromBlock: 'newest' }], /fromBlock .* got "newest"/);
    rejects(['logs', { fromBlock: `0x1${'0'.repeat(16)}` }], /fromBlock/);
    rejects(['logs', { fromBlock: '0x10', toBlock: '0xf' }], /logs filter fromBlock 16 is after toBlock 15/);
  });

  it('a bounded subscription delivers the logs of the blocks within its bounds, both ends included', () => {
    assert.equal(withinBlocks(undefined, 7n), true);
    assert.deepEqual([7n, 8n, 9n, 10n, 11n].map((n) => withinBlocks({ from: 8n, to: 10n }, n)), [false, true, true, true, false]);
    assert.deepEqual([0n, 1000n].map((n) => withinBlocks({ from: 8n }, n)), [false, true]);
    assert.deepEqual([0n, 3n].map((n) => withinBlocks({ to: 2n }, n)), [true, false]);
  });

  it('refuses a filter that is not an object, or extra params', () => {
    rejects(['logs', [A1]], /logs filter must be an object/);
    rejects(['logs', 'x'], /logs filter must be an object, got "x"/);
    rejects(['logs', {}, {}], /at most one more param/);
  });

  it('refuses malformed addresses, naming where they are', () => {
    rejects(['logs', { address: '0x1234' }], /logs filter address must be a 20-byte .*"0x1234"/);
    rejects(['logs', { address: [A1, A1.slice(2)] }], /address\[1\] must be a 20-byte/);
    rejects(['logs', { address: [A1, 'z'.repeat(200)] }], /address\[1\].*\.\.\.$/);
    rejects(['logs', { address: [A1 + '00'] }], /address\[0\]/);
    rejects(['logs', { address: ['0x' + 'g'.repeat(40)] }], /address\[0\]/);
    rejects(['logs', { address: [123] }], /address\[0\]/);
    rejects(['logs', { address: 7 }], /address must be a string or an array, got 7/);
  });

  it('refuses malformed topics, naming the position', () => {
    rejects(['logs', { topics: T1 }], /topics must be an array/);
    rejects(['logs', { topics: [T1, '0x12'] }], /topics\[1\] must be a 32-byte/);
    rejects(['logs', { topics: [null, [T1, A1]] }], /topics\[1\]\[1\] must be a 32-byte/);
    rejects(['logs', { topics: [{}] }], /topics\[0\] must be null, a topic or an array of topics/);
    rejects(['logs', { topics: [[[T1]]] }], /topics\[0\]\[0\]/);
  });

  it('enforces the limits on addresses, positions and alternatives', () => {
    const limits = { maxAddresses: 2, maxTopicsPerPosition: 2 };
    assert.doesNotThrow(() => parseSubscription(['logs', { address: [A1, A2], topics: [[T1, T2]] }], limits));
    rejects(['logs', { address: [A1, A2, A3] }], /3 addresses; the limit is 2/, limits);
    // Counted before de-duplication: the raw list is what the client made us look at.
    rejects(['logs', { address: [A1, A1, A1] }], /3 addresses/, limits);
    rejects(['logs', { topics: [null, [T1, T2, T3]] }], /topics\[1\] has 3 alternatives; the limit is 2/, limits);
    rejects(['logs', { topics: [null, null, null, null, null] }], /5 topic positions; at most 4/);
    assert.deepEqual(parseSubscription(['logs', { topics: [T1, T1, T1, T1] }]).filter?.topics?.length, 4);
  });

  it('has the documented default limits', () => {
    assert.deepEqual({ ...defaultFilterLimits }, { maxAddresses: 1000, maxTopicsPerPosition: 100 });
    const many = Array.from({ length: 1001 }, (_, i) => '0x' + i.toString(16).padStart(40, '0'));
    rejects(['logs', { address: many }], /1001 addresses; the limit is 1000/);
    assert.equal(parseSubscription(['logs', { address: many.slice(1) }]).filter?.address?.length, 1000);
  });
});
