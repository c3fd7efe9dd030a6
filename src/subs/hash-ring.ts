/**
 * Consistent-hash ring that pins client sessions to upstreams.
 *
 * Each node owns `round(virtualNodes * weight / unit)` points on a 32-bit ring, at the hashes of
 * `name#0`, `name#1`, ... A key belongs to the first point at or after its own hash. For a given
 * node set, a node's points depend only on its name and weight, which gives the two properties
 * subscriptions rely on: marking a node ineligible (or removing it, while the unit below stays the
 * same) moves only the keys it owned, each to the next node on the ring, and making it eligible
 * again restores exactly the old mapping.
 *
 * `unit` (weightUnit) is the weights' greatest common divisor, or a tenth of the largest weight if
 * that is more: weights 1000, 1000, 1000 are 1, 1, 1, and 1000, 1 are 10 and 0.01. Taken as they
 * were written, weight 1000 on 3 nodes made 3 million points, and building the ring held evmux's
 * start for 11-15 s; now no node has more than 10 × virtualNodes points.
 *
 * Nodes with weight 0 (or a weight that is not a positive finite number) own no points; they are
 * standbys, appended in name order to every preference list, so they are used only when every
 * weighted node is ineligible. This matches the balancer's treatment of weight 0.
 *
 * Balance: a node's share of the keys varies by roughly 1/sqrt(points it owns) around its weight
 * share, so more virtual nodes give a tighter balance at the cost of memory and rebuild time only
 * (lookups are a binary search). See the default below.
 */

/**
 * Virtual nodes per unit of weight. 160 (the ketama figure) leaves each node's share about ±8%
 * (one standard deviation) off its ideal share; 1,000 brings that to about ±3% for 3 nodes while
 * a rebuild still takes well under a millisecond.
 */
const defaultVirtualNodes = 1000;

export interface RingNode {
  name: string;
  weight: number;
}

export class HashRing {
  readonly #virtualNodes: number;
  /** sorted point hashes */
  #points = new Uint32Array(0);
  /** #owners[i] = index into #weighted of the node owning #points[i] */
  #owners = new Uint16Array(0);
  /** names of the nodes that own points */
  #weighted: string[] = [];
  /** weight-0 nodes in name order, tried after every weighted node */
  #standby: string[] = [];

  constructor(options: { /** virtual nodes per unit of weight @default 1000 */ virtualNodes?: number } = {}) {
    const { virtualNodes = defaultVirtualNodes } = options;
    if (!Number.isInteger(virtualNodes) || virtualNodes < 1) {
      throw new RangeError(`virtualNodes must be a positive integer, got ${String(virtualNodes)}`);
    }
    this.#virtualNodes = virtualNodes;
  }

  /** Replaces the node set. Names must be unique; the order of `nodes` does not matter. */
  setNodes(nodes: readonly RingNode[]): void {
    const seen = new Set<string>();
    const weighted: { name: string; count: number }[] = [];
    const standby: string[] = [];
    for (const { name, weight } of nodes) {
      if (seen.has(name)) throw new TypeError(`duplicate ring node "${name}"`);
      seen.add(name);
      if (Number.isFinite(weight) && weight > 0) {
        weighted.push({ name, count: weight });
      } else {
        standby.push(name);
      }
    }
    if (weighted.length > 0xffff) throw new RangeError('too many ring nodes');
    const unit = weightUnit(weighted.map((node) => node.count));
    for (const node of weighted) node.count = Math.max(1, Math.round((node.count * this.#virtualNodes) / unit));
    // Name order makes owner indexes, and so the tie-break on equal points, independent of input order.
    weighted.sort((a, b) => compareNames(a.name, b.name));
    standby.sort(compareNames);

    const total = weighted.reduce((sum, node) => sum + node.count, 0);
    // Each point as hash × 65536 + owner (under 2^48, exact in a double), sorted natively: by hash,
    // colliding points by owner, the same way every time.
    const keyed = new Float64Array(total);
    let at = 0;
    for (const [owner, node] of weighted.entries()) {
      for (let i = 0; i < node.count; i++) keyed[at++] = hash32(`${node.name}#${i}`) * OWNER_SPAN + owner;
    }
    keyed.sort();

    this.#points = Uint32Array.from(keyed, (point) => Math.floor(point / OWNER_SPAN));
    this.#owners = Uint16Array.from(keyed, (point) => point % OWNER_SPAN);
    this.#weighted = weighted.map((node) => node.name);
    this.#standby = standby;
  }

  /** preference list for a key: every node name once, in ring order starting at the key's position */
  preference(key: string): string[] {
    const result: string[] = [];
    this.#walk(key, (name) => {
      result.push(name);
      return false;
    });
    return result;
  }

  /** first node in preference order for which eligible(name) is true */
  lookup(key: string, eligible?: (name: string) => boolean): string | undefined {
    if (eligible === undefined) {
      if (this.#points.length > 0) return this.#weighted[this.#owners[this.#start(key)]!];
      return this.#standby[0];
    }
    return this.#walk(key, eligible);
  }

  /** Visits nodes in preference order until `visit` returns true; returns that node. */
  #walk(key: string, visit: (name: string) => boolean): string | undefined {
    const points = this.#points.length;
    if (points > 0) {
      const visited = new Uint8Array(this.#weighted.length);
      let remaining = this.#weighted.length;
      const start = this.#start(key);
      for (let step = 0; step < points && remaining > 0; step++) {
        const owner = this.#owners[(start + step) % points]!;
        if (visited[owner] === 1) continue;
        visited[owner] = 1;
        remaining--;
        const name = this.#weighted[owner]!;
        if (visit(name)) return name;
      }
    }
    for (const name of this.#standby) {
      if (visit(name)) return name;
    }
    return undefined;
  }

  /** Index of the first point at or after the key's hash, wrapping to 0 past the last point. */
  #start(key: string): number {
    const target = hash32(key);
    const points = this.#points;
    let low = 0;
    let high = points.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (points[middle]! < target) low = middle + 1;
      else high = middle;
    }
    return low === points.length ? 0 : low;
  }
}

const OWNER_SPAN = 0x10000;
/** The most points a node has, in units of virtualNodes. */
const MAX_UNITS = 10;

/** What a weight is divided by: the weights' greatest common divisor, or more so no node has over MAX_UNITS units. */
export function weightUnit(weights: readonly number[]): number {
  const integers = weights.every(Number.isInteger);
  const divisor = integers ? weights.reduce(gcd, 0) : 1;
  return Math.max(divisor, Math.max(...weights) / MAX_UNITS);
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** Code-unit order, the same in every locale (unlike localeCompare). */
function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const encoder = new TextEncoder();

/**
 * MurmurHash3 (x86, 32-bit) of the UTF-8 bytes of `text`. Fast, well distributed and the same in
 * every process and version, which the ring needs so that replicas and restarts agree.
 */
export function hash32(text: string, seed = 0): number {
  const bytes = encoder.encode(text);
  const length = bytes.length;
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  let h = seed | 0;
  const tail = length & ~3;
  for (let i = 0; i < tail; i += 4) {
    let k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const rest = length & 3;
  if (rest > 0) {
    let k = 0;
    if (rest === 3) k ^= bytes[tail + 2]! << 16;
    if (rest >= 2) k ^= bytes[tail + 1]! << 8;
    k ^= bytes[tail]!;
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
  }
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
