// A deterministic fake chain shared by the fake upstream and the bare-publish baseline.
//
// Block n's hash is sha256(seed:n), its parentHash is block n-1's hash, so every process started
// with the same seed serves the same chain, and a gateway that checks parent links accepts it.
// Heads follow the wall clock: head(t) = floor((t - genesisMs) / intervalMs). Two fake upstreams
// given the same --genesis-ms and --interval-ms therefore emit the same head at the same moment,
// which is what the failover benchmark needs.
//
// Turns: with `turns` set, the chain only advances during its own turn. Time since genesis is cut
// into `count` turns of `ms` each, repeating, and heads fall due at `intervalMs` steps of the time
// spent in turn `index` only. Two servers on the same genesis with turns 0 and 1 of 2 therefore
// take turns publishing, each at its full rate within its turn, and never at the same moment; the
// fan-out benchmark runs the bare baseline and evmux that way, side by side, so both meet the same
// moments of the machine.
//
// Latency stamp: `extraData` carries the send time as 8 bytes (16 hex digits) of microseconds on
// the system-wide monotonic clock (process.hrtime, CLOCK_MONOTONIC), so any process on the same
// machine can compute the one-way latency without clock skew. See monoMicros().
import { createHash } from 'node:crypto';

const ZERO_HASH = `0x${'0'.repeat(64)}`;
const EMPTY_BLOOM = `0x${'0'.repeat(512)}`;
const EMPTY_UNCLES = '0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347';
const EMPTY_TRIE = '0x56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421';
const MINER = '0x00000000000000000000000000000000000000fe';

/** Microseconds on CLOCK_MONOTONIC, comparable across processes on one machine. */
export function monoMicros(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

export function toHex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** 16 hex digits, the width of the latency stamp in extraData. */
export function stampHex(micros: number): string {
  return `0x${Math.max(0, Math.floor(micros)).toString(16).padStart(16, '0')}`;
}

export interface ChainOptions {
  /** Chain identity: same seed, same hashes. */
  seed: string;
  /** Wall-clock time (ms since epoch) of block 0. */
  genesisMs: number;
  /** Block time in ms. */
  intervalMs: number;
  /** Approximate byte size of a full block served by eth_getBlockByNumber / ByHash. */
  blockBytes: number;
  /** Advance only during turn `index` of `count` turns of `ms` each (see the top of this file). */
  turns?: Turns;
}

export interface Turns {
  count: number;
  index: number;
  ms: number;
}

/** Parse `COUNT:INDEX:MS` (e.g. `2:1:2500`, the second of two 2.5 s turns). */
export function parseTurns(text: string): Turns {
  const [count, index, ms] = text.split(':').map(Number);
  if (count === undefined || index === undefined || ms === undefined || !(count >= 1 && index >= 0 && index < count && ms > 0)) {
    throw new Error(`--turns must be COUNT:INDEX:MS with 0 <= INDEX < COUNT and MS > 0, got ${text}`);
  }
  return { count, index, ms };
}

/** The turns as a flag value, the inverse of parseTurns. */
export function turnsFlag(t: Turns): string {
  return `${t.count}:${t.index}:${t.ms}`;
}

export class FakeChain {
  readonly #opts: ChainOptions;
  readonly #hashes = new Map<number, string>();

  constructor(opts: ChainOptions) {
    this.#opts = opts;
  }

  get options(): ChainOptions {
    return this.#opts;
  }

  /** The head number at wall-clock time `nowMs`. */
  headAt(nowMs: number): number {
    return Math.max(0, Math.floor(this.#chainMs(nowMs - this.#opts.genesisMs) / this.#opts.intervalMs));
  }

  /** Wall-clock time at which block n is due. */
  dueMs(n: number): number {
    return this.#opts.genesisMs + this.#wallMs(n * this.#opts.intervalMs);
  }

  /** Chain time (time spent in this chain's turns) after `wallMs` since genesis. */
  #chainMs(wallMs: number): number {
    const t = this.#opts.turns;
    if (t === undefined) return wallMs;
    const since = wallMs - t.index * t.ms;
    if (since <= 0) return 0;
    const rounds = Math.floor(since / (t.count * t.ms));
    return rounds * t.ms + Math.min(t.ms, since - rounds * t.count * t.ms);
  }

  /** The first moment (ms since genesis) at which chain time reaches `chainMs`: the inverse of #chainMs. */
  #wallMs(chainMs: number): number {
    const t = this.#opts.turns;
    if (t === undefined) return chainMs;
    if (chainMs <= 0) return t.index * t.ms;
    const round = Math.ceil(chainMs / t.ms) - 1;
    return t.index * t.ms + round * t.count * t.ms + (chainMs - round * t.ms);
  }

  hashOf(n: number): string {
    if (n < 0) return ZERO_HASH;
    let h = this.#hashes.get(n);
    if (h === undefined) {
      h = `0x${createHash('sha256').update(`${this.#opts.seed}:${n}`).digest('hex')}`;
      // The cache only serves recent lookups; keep it bounded.
      if (this.#hashes.size > 8192) this.#hashes.clear();
      this.#hashes.set(n, h);
    }
    return h;
  }

  /** The newHeads header of block n as JSON text, stamped with `stampUs` (the send time). */
  header(n: number, stampUs: number): string {
    return `{${this.#fields(n, stampUs)}}`;
  }

  /**
   * Block n as JSON text: the header fields plus transaction hashes up to ~bytes (default
   * blockBytes). Pass the same stamp the header was sent with so both views of the block agree.
   */
  block(n: number, stampUs: number, bytes = this.#opts.blockBytes): string {
    const fields = this.#fields(n, stampUs);
    const txCount = Math.max(0, Math.floor((bytes - fields.length - 90) / 69));
    // Transaction hashes only need to look like hashes: derive them cheaply from the block hash.
    const stem = this.hashOf(n).slice(0, 58);
    const txs: string[] = [];
    for (let i = 0; i < txCount; i++) txs.push(`"${stem}${i.toString(16).padStart(8, '0')}"`);
    return (
      `{${fields},"size":"${toHex(bytes)}","totalDifficulty":"0x0",` +
      `"uncles":[],"transactions":[${txs.join(',')}]}`
    );
  }

  #fields(n: number, stampUs: number): string {
    const tsSec = Math.floor(this.dueMs(n) / 1000);
    // Field order is fixed; receivers scan for `"number":` and `"extraData":` without parsing.
    return (
      `"parentHash":"${this.hashOf(n - 1)}","sha3Uncles":"${EMPTY_UNCLES}","miner":"${MINER}",` +
      `"stateRoot":"0x5${this.hashOf(n).slice(3)}","transactionsRoot":"${EMPTY_TRIE}",` +
      `"receiptsRoot":"${EMPTY_TRIE}","logsBloom":"${EMPTY_BLOOM}","difficulty":"0x0",` +
      `"number":"${toHex(n)}","gasLimit":"0x1c9c380","gasUsed":"0x0","timestamp":"${toHex(tsSec)}",` +
      `"extraData":"${stampHex(stampUs)}","mixHash":"${ZERO_HASH}","nonce":"0x0000000000000000",` +
      `"baseFeePerGas":"0x7","hash":"${this.hashOf(n)}"`
    );
  }
}

/** eth_subscription envelope around a result, for one subscription id. */
export function notification(subId: string, result: string): string {
  return `{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"${subId}","result":${result}}}`;
}

export interface Ticker {
  close(): void;
}

/**
 * Calls onHead(n) for every head as its due time passes (several if the timer was late), so
 * emitted heads never skip a number. The first call is for the head after the current one.
 */
export function startTicker(chain: FakeChain, onHead: (n: number) => void): Ticker {
  let last = chain.headAt(Date.now());
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const arm = (): void => {
    const wait = Math.max(0, chain.dueMs(last + 1) - Date.now());
    timer = setTimeout(tick, wait);
  };
  const tick = (): void => {
    if (closed) return;
    const now = chain.headAt(Date.now());
    while (last < now) {
      last += 1;
      onHead(last);
    }
    arm();
  };
  arm();
  return {
    close(): void {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
    },
  };
}

/** Default genesis: far enough back that head numbers look like a live chain's. */
export function defaultGenesisMs(intervalMs: number): number {
  const now = Date.now();
  return now - (now % intervalMs) - 10_000 * intervalMs;
}
