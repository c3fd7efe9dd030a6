// What a block costs the logs streams of one node before any eth_getLogs: each distinct filter
// (a logs topic) asks whether the block's bloom may hold its logs. Prints one JSON line: ms per
// block for --topics distinct one-address filters, with the bloom parsed once per block (what
// evmux does) and, as the same-run baseline, parsed again for each topic (what it did before).
//
//   node dist/bench/bloom-checks.js [--topics 10000] [--blocks 20]

import { hexToBytes } from 'viem';
import { bloomMayMatch, bloomQuery, type BloomQuery } from '../src/subs/log-bloom.js';
import { toolArgs } from './tool-args.js';

const args = toolArgs(import.meta.url, { topics: { type: 'string', default: '10000' }, blocks: { type: 'string', default: '20' } });
const topics = Number(args.topics);
const blocks = Number(args.blocks);
const BLOOM_HEX = /^0x[0-9a-fA-F]{512}$/;

const queries = Array.from({ length: topics }, (_, i) => bloomQuery({ address: [`0x${i.toString(16).padStart(40, '0')}`] }));
const bytes = new Uint8Array(256);
for (let i = 0; i < bytes.length; i += 7) bytes[i] = 0x41;
const base = `0x${Buffer.from(bytes).toString('hex')}`;

/** The check as it was: the bloom parsed for every topic. */
function parsedPerTopic(logsBloom: unknown, query: BloomQuery): boolean {
  if (typeof logsBloom !== 'string' || !BLOOM_HEX.test(logsBloom)) return true;
  const bloom = hexToBytes(logsBloom as `0x${string}`);
  return !bloom.every((byte) => byte === 0) && query.addresses.length >= 0;
}

function msPerBlock(check: (bloom: unknown, query: BloomQuery) => boolean): number {
  const started = performance.now();
  for (let block = 0; block < blocks; block++) {
    // A new string per block, as each block's header brings its own.
    const bloom = `${base.slice(0, -2)}${(block % 256).toString(16).padStart(2, '0')}`;
    for (const query of queries) check(bloom, query);
  }
  return (performance.now() - started) / blocks;
}

// Alternating, after one unmeasured pass of each (optimized code on both sides).
msPerBlock(parsedPerTopic);
msPerBlock(bloomMayMatch);
const perTopic: number[] = [];
const once: number[] = [];
for (let round = 0; round < 5; round++) {
  perTopic.push(msPerBlock(parsedPerTopic));
  once.push(msPerBlock(bloomMayMatch));
}
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
process.stdout.write(`${JSON.stringify({ tool: 'bloom-checks', topics, blocks, msPerBlockParsedPerTopic: +median(perTopic).toFixed(2), msPerBlockParsedOnce: +median(once).toFixed(2) })}\n`);
