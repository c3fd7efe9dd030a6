/**
 * Synthetic block trees for the pure stream tests: heads with unique hashes, forks anywhere, and a
 * HeadSource over the tree whose failures (null, throw, delay) a test scripts per hash.
 */
import type { Head, HeadSource } from '../../src/subs/chain-cursor.js';

export interface TestHead extends Head {
  /** readable name for assertion messages, e.g. "b12" or "a11'" */
  label: string;
}

export class HeadTree {
  readonly #byHash = new Map<string, TestHead>();
  #counter = 0;
  #newest: TestHead | undefined;

  /** A root block (no known parent) at the given height. */
  root(number = 0n, label = `r${number}`): TestHead {
    return this.#add({ number, parentHash: hashOf(0xdead_0000 + this.#counter), label });
  }

  child(parent: TestHead, label?: string): TestHead {
    const number = parent.number + 1n;
    return this.#add({ number, parentHash: parent.hash, label: label ?? `${parent.label.replace(/\d+$/, '')}${number}` });
  }

  /** `count` blocks on top of `parent`, ascending; the last is the new tip. */
  extend(parent: TestHead, count: number, prefix?: string): TestHead[] {
    const out: TestHead[] = [];
    let tip = parent;
    for (let i = 0; i < count; i++) {
      tip = this.child(tip, prefix === undefined ? undefined : `${prefix}${tip.number + 1n}`);
      out.push(tip);
    }
    return out;
  }

  get(hash: string): TestHead | undefined {
    return this.#byHash.get(hash);
  }

  /** The block made last: by default the tip of the chain a source calls canonical. */
  get newest(): TestHead | undefined {
    return this.#newest;
  }

  /** The chain from `tip` down to (and including) height `from`, ascending. */
  ancestry(tip: TestHead, from: bigint): TestHead[] {
    const out: TestHead[] = [];
    let cur: TestHead | undefined = tip;
    while (cur !== undefined && cur.number >= from) {
      out.push(cur);
      cur = this.#byHash.get(cur.parentHash);
    }
    return out.reverse();
  }

  #add(fields: Omit<TestHead, 'hash'>): TestHead {
    const head = { ...fields, hash: hashOf(++this.#counter) };
    this.#byHash.set(head.hash, head);
    this.#newest = head;
    return head;
  }
}

export function hashOf(n: number): string {
  return `0x${n.toString(16).padStart(64, '0')}`;
}

export interface ScriptedSource extends HeadSource<TestHead> {
  /** hashes asked for, in order */
  readonly calls: string[];
  /** heights asked for (byNumber), in order */
  readonly numbers: bigint[];
}

/**
 * A HeadSource over the tree. `unknown` hashes answer null, `failing` ones throw, `onFetch` runs
 * before each answer by hash (a test advances a fake clock there). By number it answers from the
 * chain ending in `canonical` (default: the tree's newest block); heights in `unknownNumbers` answer null.
 */
export function sourceOf(tree: HeadTree, script: {
  unknown?: Iterable<string>;
  failing?: Iterable<string>;
  onFetch?: (hash: string) => void;
  canonical?: TestHead;
  unknownNumbers?: Iterable<bigint>;
} = {}): ScriptedSource {
  const unknown = new Set(script.unknown ?? []);
  const failing = new Set(script.failing ?? []);
  const unknownNumbers = new Set(script.unknownNumbers ?? []);
  const calls: string[] = [];
  const numbers: bigint[] = [];
  return {
    calls,
    numbers,
    /** a source over the tree holds nothing: every parent is asked for */
    known: () => undefined,
    byNumber(number: bigint): Promise<TestHead | null> {
      numbers.push(number);
      const tip = script.canonical ?? tree.newest;
      if (tip === undefined || unknownNumbers.has(number)) return Promise.resolve(null);
      return Promise.resolve(tree.ancestry(tip, number)[0] ?? null);
    },
    byHash(hash: string): Promise<TestHead | null> {
      calls.push(hash);
      script.onFetch?.(hash);
      if (failing.has(hash)) return Promise.reject(new Error(`upstream failed fetching ${hash}`));
      if (unknown.has(hash)) return Promise.resolve(null);
      return Promise.resolve(tree.get(hash) ?? null);
    },
  };
}

/** mulberry32: small, fast, seeded; good enough to drive property tests reproducibly. */
export function prng(seed: number): { next(): number; int(min: number, max: number): number; chance(p: number): boolean } {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    /** integer in [min, max] */
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    chance: (p) => next() < p,
  };
}

export function labels(heads: readonly TestHead[]): string[] {
  return heads.map((h) => h.label);
}

export interface Notification {
  head: TestHead;
  /** what the upstream was doing, for assertion messages */
  note: string;
}

/**
 * A random upstream: the canonical chain grows, reorgs (depth 1..6, new branch shorter, equal or
 * longer) or flips back to a branch it abandoned; its notifications are skipped (gaps), duplicated,
 * late (an older canonical block) or stale (a block of an abandoned branch). The last notification
 * is the final tip, `finalGrowth` blocks above the last random step and above every head sent before
 * (a stream waits out heads below its tip, and heads at its height on a branch it left, so a final
 * tip no higher might never be delivered).
 */
export function randomUpstream(seed: number, { steps, finalGrowth = 0 }: { steps: number; finalGrowth?: number }):
{ tree: HeadTree; notifications: Notification[]; tip: TestHead } {
  const rnd = prng(seed);
  const tree = new HeadTree();
  const notifications: Notification[] = [];
  const abandoned: TestHead[] = [];
  const last = (heads: TestHead[], fallback: TestHead): TestHead => heads.at(-1) ?? fallback;
  let tip = tree.root(1000n, 'g1000');
  let branches = 0;
  notifications.push({ head: tip, note: 'first' });
  for (let step = 0; step < steps; step++) {
    const roll = rnd.next();
    if (roll < 0.55) {
      tip = last(tree.extend(tip, rnd.int(1, 3)), tip);
    } else if (roll < 0.9 || abandoned.length === 0) {
      const depth = rnd.int(1, 6);
      const fork = tree.ancestry(tip, tip.number - BigInt(depth))[0] ?? tip;
      abandoned.push(tip);
      tip = last(tree.extend(fork, rnd.int(1, depth + 3), `b${++branches}-`), tip);
    } else {
      // Flip back to an abandoned branch (plus a new block, as a real chain would).
      const back = abandoned.splice(rnd.int(0, abandoned.length - 1), 1)[0];
      if (back !== undefined && back.number + 3n >= tip.number && back.number <= tip.number + 3n) {
        abandoned.push(tip);
        tip = last(tree.extend(back, rnd.int(1, 2)), tip);
      }
    }
    while (abandoned.length > 8) abandoned.shift();

    if (rnd.chance(0.25)) continue; // skipped: a gap for the next notification
    notifications.push({ head: tip, note: `step ${step} ${tip.label}` });
    if (rnd.chance(0.15)) notifications.push({ head: tip, note: `step ${step} duplicate` });
    if (rnd.chance(0.15)) {
      const late = tree.ancestry(tip, tip.number - BigInt(rnd.int(1, 5)))[0] ?? tip;
      notifications.push({ head: late, note: `step ${step} late ${late.label}` });
    }
    const stale = abandoned[rnd.int(0, abandoned.length - 1)];
    if (rnd.chance(0.05) && stale !== undefined && stale.number <= tip.number + 3n) {
      notifications.push({ head: stale, note: `step ${step} stale ${stale.label}` });
    }
  }
  const highest = notifications.reduce((max, { head }) => (head.number > max ? head.number : max), tip.number);
  const growth = Math.max(finalGrowth, Number(highest - tip.number) + 1);
  if (growth > 0) tip = last(tree.extend(tip, growth), tip);
  notifications.push({ head: tip, note: 'final' });
  return { tree, notifications, tip };
}
