/**
 * A deterministic in-memory chain of headers (and optional logs) for the fake node. Nothing is
 * materialized: a block is the pair (height, branch), and its hash is derived from
 * (seed, height, branch) in a reversible way, so any hash handed out - canonical or orphaned, by
 * this instance or by another one with the same seed and history - can be looked up again.
 */
import { createHash } from 'node:crypto';
import type { FakeLog, FakeLogInput, Hex, LogFilter } from './synthetic-logs.js';
import { EMPTY_BLOOM, logMatches, logsBloom } from './synthetic-logs.js';

export interface FakeHeader {
  number: bigint;
  hash: Hex;
  parentHash: Hex;
  timestamp: bigint;
}

export interface SyntheticChainOptions {
  /** mixed into every hash: equal seeds and equal histories give equal chains @default 'fake' */
  seed?: string;
  /** height of the head at start; blocks 0..startHeight exist @default 100 */
  startHeight?: number;
  /** timestamp of block 0; block n has genesisTimestamp + 12 n @default 1_700_000_000n */
  genesisTimestamp?: bigint;
}

/** A run of blocks forked off `parent` at height first - 1; it grows while it is the tip. */
interface Branch {
  readonly id: number;
  readonly parent: number | undefined;
  readonly first: bigint;
  last: bigint;
}

interface BlockLogs {
  readonly number: bigint;
  readonly branch: number;
  readonly inputs: FakeLogInput[];
}

const ZERO_HASH: Hex = `0x${'00'.repeat(32)}`;
const EMPTY_TRIE: Hex = '0x56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421';
const EMPTY_UNCLES: Hex = '0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347';
const BLOCK_SECONDS = 12n;

export const toQuantity = (value: bigint | number): Hex => `0x${value.toString(16)}`;

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

export class SyntheticChain {
  readonly seed: string;
  readonly #genesisTimestamp: bigint;
  readonly #branches: Branch[];
  #tip = 0;
  readonly #logs = new Map<string, BlockLogs>();
  /** logs queued for heights not produced yet, consumed by whichever block takes the height */
  readonly #pending = new Map<bigint, FakeLogInput[]>();
  readonly #miner: Hex;

  constructor({ seed = 'fake', startHeight = 100, genesisTimestamp = 1_700_000_000n }: SyntheticChainOptions = {}) {
    if (!Number.isSafeInteger(startHeight) || startHeight < 0) throw new RangeError('startHeight must be >= 0');
    this.seed = seed;
    this.#genesisTimestamp = genesisTimestamp;
    this.#branches = [{ id: 0, parent: undefined, first: 0n, last: BigInt(startHeight) }];
    this.#miner = `0x${sha256(`${seed}|miner`).subarray(0, 20).toString('hex')}`;
  }

  get height(): bigint {
    return this.#branch(this.#tip).last;
  }

  get head(): FakeHeader {
    return this.#make(this.height, this.#tip);
  }

  /** The canonical header at `number`, or undefined above the head. */
  header(number: bigint): FakeHeader | undefined {
    if (number < 0n || number > this.height) return undefined;
    return this.#make(number, this.#branchAt(number, this.#tip));
  }

  /** Any header this chain ever had (canonical or orphaned). */
  headerByHash(hash: string): { header: FakeHeader; canonical: boolean } | undefined {
    const at = this.#locate(hash);
    if (at === undefined) return undefined;
    const canonical = at.number <= this.height && this.#branchAt(at.number, this.#tip) === at.branch;
    return { header: this.#make(at.number, at.branch), canonical };
  }

  /** Grows the tip branch by n blocks; returns the new headers in order. */
  advance(n = 1): FakeHeader[] {
    const tip = this.#branch(this.#tip);
    const added: FakeHeader[] = [];
    for (let i = 0; i < n; i++) {
      tip.last += 1n;
      this.#takePending(tip.last, tip.id);
      added.push(this.#make(tip.last, tip.id));
    }
    return added;
  }

  /** Replaces the last `depth` blocks with a new branch of depth + `grow` blocks (0: as high as the old one; below 0: a rewind). */
  reorg(depth: number, grow = 1): { removed: FakeHeader[]; added: FakeHeader[] } {
    const height = this.height;
    if (!Number.isSafeInteger(depth) || depth < 0 || BigInt(depth) > height) {
      throw new RangeError(`reorg depth must be between 0 and ${height}`);
    }
    if (!Number.isSafeInteger(grow) || depth + grow < 1) throw new RangeError('a reorg makes at least one block');
    const fork = height - BigInt(depth);
    const removed: FakeHeader[] = [];
    for (let n = fork + 1n; n <= height; n++) removed.push(this.#make(n, this.#branchAt(n, this.#tip)));
    const branch: Branch = { id: this.#branches.length, parent: this.#tip, first: fork + 1n, last: height + BigInt(grow) };
    this.#branches.push(branch);
    this.#tip = branch.id;
    const added: FakeHeader[] = [];
    for (let n = branch.first; n <= branch.last; n++) {
      this.#takePending(n, branch.id);
      added.push(this.#make(n, branch.id));
    }
    return { removed, added };
  }

  /**
   * Attaches a log to the canonical block at `number` if it exists (silently, as if it had always
   * been there), else queues it for whichever block later takes that height.
   * @default number: the next block (head + 1)
   */
  addLog(input: FakeLogInput, number: bigint = this.height + 1n): void {
    if (number <= this.height) {
      const branch = this.#branchAt(number, this.#tip);
      const key = `${number}:${branch}`;
      const entry = this.#logs.get(key) ?? { number, branch, inputs: [] };
      entry.inputs.push(input);
      this.#logs.set(key, entry);
      return;
    }
    const queue = this.#pending.get(number) ?? [];
    queue.push(input);
    this.#pending.set(number, queue);
  }

  /** Logs of the block with this header's hash (canonical or orphaned), [] for unknown blocks. */
  logsOf(header: Pick<FakeHeader, 'hash'>, removed = false): FakeLog[] {
    const at = this.#locate(header.hash);
    return at === undefined ? [] : this.#render(at.number, at.branch, removed);
  }

  /** eth_getLogs semantics over canonical blocks; a string result is an error message. */
  getLogs(filter: LogFilter): FakeLog[] | string {
    if (filter.blockHash !== undefined) {
      const at = this.#locate(filter.blockHash);
      if (at === undefined) return 'unknown block';
      return this.#render(at.number, at.branch, false).filter((log) => logMatches(filter, log));
    }
    const from = this.resolveTag(filter.fromBlock ?? 'latest');
    const to = this.resolveTag(filter.toBlock ?? 'latest');
    if (from === undefined || to === undefined) return 'invalid block tag';
    const out: FakeLog[] = [];
    for (const { number, branch } of this.#logs.values()) {
      if (number < from || number > to || number > this.height) continue;
      if (this.#branchAt(number, this.#tip) !== branch) continue;
      out.push(...this.#render(number, branch, false).filter((log) => logMatches(filter, log)));
    }
    return out.sort((a, b) => Number(BigInt(a.blockNumber) - BigInt(b.blockNumber)) || Number(BigInt(a.logIndex) - BigInt(b.logIndex)));
  }

  /** Block tag or hex number to a height (not clamped to the head); undefined if malformed. */
  resolveTag(tag: string): bigint | undefined {
    const head = this.height;
    switch (tag) {
      case 'latest':
      case 'pending':
        return head;
      case 'earliest':
        return 0n;
      case 'safe':
        return head > 32n ? head - 32n : 0n;
      case 'finalized':
        return head > 64n ? head - 64n : 0n;
      default:
        return /^0x[0-9a-fA-F]{1,16}$/.test(tag) ? BigInt(tag) : undefined;
    }
  }

  /** The header as newHeads sends it: every field a 0x hex string, like geth. */
  headerJson(header: FakeHeader): Record<string, Hex> {
    const logs = this.logsOf(header);
    const derive = (what: string): Hex => `0x${sha256(`${this.seed}|${what}|${header.hash}`).toString('hex')}`;
    return {
      number: toQuantity(header.number),
      hash: header.hash,
      parentHash: header.parentHash,
      timestamp: toQuantity(header.timestamp),
      nonce: '0x0000000000000000',
      mixHash: derive('mix'),
      sha3Uncles: EMPTY_UNCLES,
      logsBloom: logs.length === 0 ? EMPTY_BLOOM : logsBloom(logs),
      transactionsRoot: EMPTY_TRIE,
      stateRoot: derive('state'),
      receiptsRoot: logs.length === 0 ? EMPTY_TRIE : derive('receipts'),
      miner: this.#miner,
      difficulty: '0x0',
      extraData: '0x',
      gasLimit: toQuantity(30_000_000),
      gasUsed: '0x0',
      baseFeePerGas: toQuantity(1_000_000_000),
    };
  }

  /** The block as eth_getBlockByNumber/Hash return it; transactions are always empty. */
  blockJson(header: FakeHeader): Record<string, unknown> {
    return { ...this.headerJson(header), totalDifficulty: '0x0', size: '0x220', uncles: [], transactions: [] };
  }

  /** The block hash of (number, branch): 20 digest bytes, then number and branch masked by a pad. */
  #hash(number: bigint, branch: number): Hex {
    const digest = sha256(`${this.seed}|block|${number}|${branch}`).subarray(0, 20);
    const tail = Buffer.alloc(12);
    tail.writeBigUInt64BE(number, 0);
    tail.writeUInt32BE(branch, 8);
    const pad = sha256(`${this.seed}|pad|${digest.toString('hex')}`);
    for (let i = 0; i < 12; i++) tail[i] = (tail[i] ?? 0) ^ (pad[i] ?? 0);
    return `0x${digest.toString('hex')}${tail.toString('hex')}`;
  }

  /** Inverse of #hash; undefined for hashes this chain never produced. */
  #locate(hash: string): { number: bigint; branch: number } | undefined {
    if (!/^0x[0-9a-fA-F]{64}$/.test(hash)) return undefined;
    const bytes = Buffer.from(hash.slice(2), 'hex');
    const pad = sha256(`${this.seed}|pad|${bytes.subarray(0, 20).toString('hex')}`);
    const tail = Buffer.alloc(12);
    for (let i = 0; i < 12; i++) tail[i] = (bytes[20 + i] ?? 0) ^ (pad[i] ?? 0);
    const number = tail.readBigUInt64BE(0);
    const branch = tail.readUInt32BE(8);
    const b = this.#branches[branch];
    if (b === undefined || number < b.first || number > b.last) return undefined;
    return this.#hash(number, branch) === hash.toLowerCase() ? { number, branch } : undefined;
  }

  #branch(id: number): Branch {
    const branch = this.#branches[id];
    if (branch === undefined) throw new Error(`no branch ${id}`);
    return branch;
  }

  /** Which branch holds height `number` on the chain that ends in branch `id`. */
  #branchAt(number: bigint, id: number): number {
    let branch = this.#branch(id);
    while (number < branch.first && branch.parent !== undefined) branch = this.#branch(branch.parent);
    return branch.id;
  }

  #make(number: bigint, branch: number): FakeHeader {
    const parentHash = number === 0n ? ZERO_HASH : this.#hash(number - 1n, this.#branchAt(number - 1n, branch));
    return {
      number,
      hash: this.#hash(number, branch),
      parentHash,
      timestamp: this.#genesisTimestamp + number * BLOCK_SECONDS,
    };
  }

  #takePending(number: bigint, branch: number): void {
    const queued = this.#pending.get(number);
    if (queued === undefined) return;
    this.#pending.delete(number);
    this.#logs.set(`${number}:${branch}`, { number, branch, inputs: queued });
  }

  #render(number: bigint, branch: number, removed: boolean): FakeLog[] {
    const entry = this.#logs.get(`${number}:${branch}`);
    if (entry === undefined) return [];
    const blockHash = this.#hash(number, branch);
    return entry.inputs.map((input, i): FakeLog => {
      const txIndex = input.transactionIndex ?? i;
      return {
        address: input.address,
        topics: input.topics ?? [],
        data: input.data ?? '0x',
        blockNumber: toQuantity(number),
        blockHash,
        transactionHash: `0x${sha256(`${this.seed}|tx|${blockHash}|${txIndex}`).toString('hex')}`,
        transactionIndex: toQuantity(txIndex),
        logIndex: toQuantity(i),
        removed,
      };
    });
  }
}
