import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidParamsError } from '../../src/jsonrpc/errors.js';
import { aliasFilterId, decodeFilterId, encodeFilterId, MAX_FILTER_UPSTREAMS } from '../../src/router/filter-id.js';

test('filter ids carry the upstream index and round-trip', () => {
  const id = encodeFilterId(2, '0x1f');
  assert.equal(id, '0x1021f');
  assert.deepEqual(decodeFilterId(id), { upstreamIndex: 2, nodeId: '0x1f' });
  assert.deepEqual(decodeFilterId('0x1021F'), { upstreamIndex: 2, nodeId: '0x1F' }, 'either case');
});

test('filter ids are quantities: written back as a number (web3.js, web3j), every one is the same id', () => {
  for (const index of [0, 1, 15, 16, 31, MAX_FILTER_UPSTREAMS - 1]) {
    for (const nodeId of ['0x1', '0x0', '0x00ab', `0x${'0'.repeat(31)}7`, `0x${'f'.repeat(32)}`]) {
      const id = encodeFilterId(index, nodeId);
      assert.equal(`0x${BigInt(id).toString(16)}`, id, `${index} ${nodeId}`);
      assert.deepEqual(decodeFilterId(id), { upstreamIndex: index, nodeId });
    }
  }
  const alias = aliasFilterId(0, '0x1', 2);
  assert.equal(`0x${BigInt(alias).toString(16)}`, alias);
  assert.ok(decodeFilterId(alias).upstreamIndex >= MAX_FILTER_UPSTREAMS, 'an alias names no node');
});

test('ids of evmux versions before the leading 1 still name their node', () => {
  assert.deepEqual(decodeFilterId('0x021f'), { upstreamIndex: 2, nodeId: '0x1f' });
  assert.deepEqual(decodeFilterId('0x00abc'), { upstreamIndex: 0, nodeId: '0xabc' });
  assert.deepEqual(decodeFilterId('0x7f12'), { upstreamIndex: 127, nodeId: '0x12' });
});

test('what is not a filter id evmux gave is refused with -32602', () => {
  for (const id of [42, null, '0x1', '0x10', '0x100', 'abc', '0x', '0xg12']) {
    assert.throws(() => decodeFilterId(id), InvalidParamsError, JSON.stringify(id));
  }
  assert.deepEqual(decodeFilterId('0x1001'), { upstreamIndex: 0, nodeId: '0x1' });
});
