import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BODY_LIMITS, shapeExcess } from '../../src/jsonrpc/body-shape.js';
import { seededRandom } from '../support/seeded-random.js';

const MAX_BODY_DEPTH = BODY_LIMITS.depth;
const nestsDeeperThan = (text: string, depth: number): boolean => shapeExcess(text, { depth, containers: Infinity, separators: Infinity }) === 'depth';
const arrays = (depth: number, inner = ''): string => `${'['.repeat(depth)}${inner}${']'.repeat(depth)}`;
const objects = (depth: number): string => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

test('a batch, a request and params MAX_PARAMS_DEPTH deep pass; one level more does not', () => {
  assert.equal(MAX_BODY_DEPTH, 34);
  const batch = (paramsDepth: number): string => `[{"jsonrpc":"2.0","id":1,"method":"eth_call","params":${arrays(paramsDepth)}}]`;
  assert.equal(nestsDeeperThan(batch(32), MAX_BODY_DEPTH), false);
  assert.equal(nestsDeeperThan(batch(33), MAX_BODY_DEPTH), true);
  assert.equal(nestsDeeperThan(arrays(5), 5), false, 'exactly at the limit');
  assert.equal(nestsDeeperThan(arrays(6), 5), true);
  assert.equal(nestsDeeperThan(objects(5), 5), false, 'objects count as levels');
  assert.equal(nestsDeeperThan(objects(6), 5), true);
  assert.equal(nestsDeeperThan(`[{"a":[{"b":[]}]}]`, 5), false);
  assert.equal(nestsDeeperThan(`[{"a":[{"b":[{}]}]}]`, 5), true, 'arrays and objects mixed');
});

test('depth is how deep the text is at one point, not how many levels it opens in all', () => {
  const wide = `[${Array.from({ length: 1000 }, () => arrays(33)).join(',')}]`;
  assert.equal(nestsDeeperThan(wide, MAX_BODY_DEPTH), false);
  assert.equal(nestsDeeperThan(`${wide.slice(0, -1)},${arrays(34)}]`, MAX_BODY_DEPTH), true, 'the deep one last');
});

test('brackets inside strings do not count, escaped quotes and backslashes included', () => {
  assert.equal(nestsDeeperThan(`["${'['.repeat(100)}"]`, 5), false);
  assert.equal(nestsDeeperThan(`["${'{'.repeat(100)}", "${']'.repeat(100)}", ${arrays(4)}]`, 5), false);
  assert.equal(nestsDeeperThan(`["\\"${'['.repeat(100)}"]`, 5), false, 'an escaped quote does not end the string');
  assert.equal(nestsDeeperThan(`["\\\\\\"${'['.repeat(100)}"]`, 5), false, 'nor one after an escaped backslash');
  assert.equal(nestsDeeperThan(`["\\\\", ${arrays(5)}]`, 5), true, 'a quote after an escaped backslash ends the string');
  assert.equal(nestsDeeperThan(`["\\\\\\\\", ${arrays(5)}]`, 5), true, 'two escaped backslashes');
  assert.equal(nestsDeeperThan(`{"${'['.repeat(100)}": 1, "k\\"[[[[[[": ${arrays(4)}}`, 5), false, 'keys are strings too');
  assert.equal(nestsDeeperThan(`["\\u005b${'['.repeat(10)}"]`, 5), false, 'a bracket written as an escape is still in the string');
});

test('text that is not JSON: an unclosed string hides what follows; unbalanced brackets are counted as they come', () => {
  assert.equal(nestsDeeperThan(`["${'['.repeat(100)}`, 5), false, 'JSON.parse fails at the end of the string, fast');
  assert.equal(nestsDeeperThan('['.repeat(6), 5), true, 'never closed');
  assert.equal(nestsDeeperThan(`${']'.repeat(100)}${'['.repeat(100)}`, 5), false, 'JSON.parse fails at the first character');
  assert.equal(nestsDeeperThan('', 5), false);
});

test('far too deep is found at the first level too many, whatever follows', () => {
  const huge = '['.repeat(5 * 1024 * 1024);
  const started = performance.now();
  for (let i = 0; i < 1000; i++) assert.equal(nestsDeeperThan(huge, MAX_BODY_DEPTH), true);
  assert.ok(performance.now() - started < 1000, `1000 scans of a 5 MiB body took ${Math.round(performance.now() - started)} ms`);
});

/** The deepest level of a parsed JSON value, counted as the scan counts: each array or object is one. */
function depthOf(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  const items = Array.isArray(value) ? (value as unknown[]) : Object.values(value);
  return 1 + Math.max(0, ...items.map(depthOf));
}

/** A random JSON value whose strings are mostly brackets, quotes and backslashes. */
function randomValue(random: () => number, depth: number): unknown {
  const pick = random();
  if (depth > 12 || pick < 0.3) return Array.from({ length: Math.floor(random() * 6) }, () => '[]{}"\\ax'[Math.floor(random() * 8)]).join('');
  if (pick < 0.4) return Math.floor(random() * 1000);
  const items = Array.from({ length: Math.floor(random() * 4) }, () => randomValue(random, depth + 1));
  return pick < 0.7 ? items : Object.fromEntries(items.map((item, index) => [`[${index}"\\{`, item]));
}

test('on valid JSON the scan agrees with the depth of the parsed value (randomized, seeded)', () => {
  for (let seed = 1; seed <= 500; seed++) {
    const text = JSON.stringify(randomValue(seededRandom(seed), 0));
    const depth = depthOf(JSON.parse(text));
    assert.equal(nestsDeeperThan(text, depth), false, `seed ${seed}: ${text}`);
    if (depth > 0) assert.equal(nestsDeeperThan(text, depth - 1), true, `seed ${seed}: ${text}`);
  }
});

test('a mass of small values or containers passes its limit; strings hold none; a large batch of calls does not', () => {
  const limits = { depth: 34, containers: 10, separators: 20 };
  assert.equal(shapeExcess(`[${'0,'.repeat(21)}0]`, limits), 'separators');
  assert.equal(shapeExcess(`[${'0,'.repeat(20)}0]`, limits), undefined, 'exactly at the limit');
  assert.equal(shapeExcess(`[${'[],'.repeat(10)}[]]`, limits), 'containers');
  assert.equal(shapeExcess(`[${'[],'.repeat(8)}[]]`, limits), undefined, 'exactly at the limit');
  assert.equal(shapeExcess(`["${',[{'.repeat(1000)}"]`, limits), undefined, 'inside a string');
  const call = '{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"address":["0x0000000000000000000000000000000000000001"],"topics":[["0xaa","0xbb"],null]}]}';
  const batch = `[${Array(1000).fill(call).join(',')}]`;
  assert.equal(shapeExcess(batch, BODY_LIMITS), undefined, 'limits.maxBatchSize calls with a filter each');
  const addresses = `[{"address":[${Array(110_000).fill('"0x0000000000000000000000000000000000000001"').join(',')}]}]`;
  assert.ok(addresses.length <= 5 * 1024 * 1024);
  assert.equal(shapeExcess(addresses, BODY_LIMITS), undefined, '5 MiB of addresses');
  assert.equal(shapeExcess(`[${'0,'.repeat(2_000_000)}0]`, BODY_LIMITS), 'separators');
  assert.equal(shapeExcess(`[${'[],'.repeat(1_000_000)}[]]`, BODY_LIMITS), 'containers');
});
