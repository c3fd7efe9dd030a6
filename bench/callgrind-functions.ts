// A callgrind dump's costs by function, with V8's generated code named. callgrind knows only the
// symbols of native code: the JavaScript V8 compiled and its builtins are bare addresses to it
// (callgrind_annotate lumps them under whatever symbol lies nearest). Node's --perf-basic-prof writes
// /tmp/perf-<pid>.map, one line per piece of generated code ("<start> <size> <name>", hex); with
// callgrind's --dump-instr=yes every cost line carries its instruction's address, so each can be
// put in the piece of code it falls in. The map only grows: code space is reused, and a later
// line for an address wins over an earlier one.
import { readFileSync } from 'node:fs';

export interface FunctionCosts {
  /** the dump's event names (Ir, and with --cache-sim=yes Dr, Dw, I1mr, D1mr, …) */
  readonly events: readonly string[];
  /** self cost per function: generated code by its map name ("JS:*name file:line", "Builtin:…"), native code as "symbol [object file]" */
  readonly byFunction: ReadonlyMap<string, readonly number[]>;
}

/** Where generated code lies, from a perf map: disjoint ranges, newest line first. */
export class PerfMap {
  readonly #starts: number[] = [];
  readonly #ranges: Array<{ start: number; end: number; name: string }> = [];

  constructor(text: string) {
    const lines = text.split('\n').filter((l) => l.length > 0);
    // Newest first: each line keeps the parts of its range no newer line has claimed.
    for (let i = lines.length - 1; i >= 0; i--) {
      const [start, size, ...name] = lines[i]!.split(' ');
      const lo = parseInt(start!, 16);
      this.#claim(lo, lo + parseInt(size!, 16), name.join(' '));
    }
  }

  /** The name of the generated code at `address`, if any. */
  nameAt(address: number): string | undefined {
    const i = upperBound(this.#starts, address) - 1;
    const range = this.#ranges[i];
    return range !== undefined && address < range.end ? range.name : undefined;
  }

  #claim(lo: number, hi: number, name: string): void {
    let at = lo;
    for (let i = Math.max(0, upperBound(this.#starts, lo) - 1); at < hi && i < this.#ranges.length; i++) {
      const taken = this.#ranges[i]!;
      if (taken.start >= hi) break;
      if (taken.end <= at) continue;
      if (taken.start > at) {
        this.#insert(i, at, taken.start, name);
        i++;
      }
      at = taken.end;
    }
    if (at < hi) this.#insert(upperBound(this.#starts, at), at, hi, name);
  }

  #insert(i: number, start: number, end: number, name: string): void {
    this.#starts.splice(i, 0, start);
    this.#ranges.splice(i, 0, { start, end, name });
  }
}

/** The first index whose value is greater than `value` (sorted ascending). */
function upperBound(sorted: readonly number[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Self costs by function of a dump written with `--dump-instr=yes` (positions "instr line").
 * Inclusive costs of calls (the line after each `calls=`) are skipped: a callee's cost is its own.
 */
export function functionCosts(dumpFile: string, map: PerfMap): FunctionCosts {
  const names = new Map<string, string>();
  const byFunction = new Map<string, number[]>();
  /** `(id) name` defines an id, `(id)` refers to one (callgrind's name compression) */
  const named = (kind: string, value: string): string => {
    const m = /^\((\d+)\)(?: (.*))?$/.exec(value);
    if (m === null) return value;
    if (m[2] !== undefined) names.set(kind + m[1], m[2]);
    return names.get(kind + m[1]) ?? value;
  };
  let events: string[] = [];
  let fn = '?';
  let object = '?';
  let address = 0;
  let callCost = false;
  for (const line of readFileSync(dumpFile, 'utf8').split('\n')) {
    if (line.startsWith('events:')) events = line.slice(7).trim().split(/\s+/);
    else if (line.startsWith('fn=')) fn = named('fn', line.slice(3));
    else if (line.startsWith('ob=')) object = named('ob', line.slice(3)).split('/').pop()!;
    else if (line.startsWith('cfn=')) named('fn', line.slice(4));
    else if (line.startsWith('cob=')) named('ob', line.slice(4));
    else if (/^(fl|fi|fe)=/.test(line)) named('fl', line.slice(3));
    else if (/^(cfi|cfl)=/.test(line)) named('fl', line.slice(4));
    else if (line.startsWith('calls=')) callCost = true;
    else if (/^[0-9+\-*]/.test(line)) {
      const fields = line.split(' ');
      address = position(fields[0]!, address);
      if (callCost) {
        callCost = false;
        continue;
      }
      const key = map.nameAt(address) ?? `${fn} [${object}]`;
      let costs = byFunction.get(key);
      if (costs === undefined) byFunction.set(key, (costs = new Array<number>(events.length).fill(0)));
      for (let i = 2; i < fields.length; i++) costs[i - 2]! += Number(fields[i]);
    }
  }
  return { events, byFunction };
}

/** An instruction position: absolute (0x…), relative (+n, -n) or the same (*). */
function position(field: string, previous: number): number {
  if (field.startsWith('0x')) return parseInt(field, 16);
  if (field.startsWith('+')) return previous + parseNumber(field.slice(1));
  if (field.startsWith('-')) return previous - parseNumber(field.slice(1));
  return previous;
}

function parseNumber(text: string): number {
  return text.startsWith('0x') ? parseInt(text, 16) : Number(text);
}

/** The functions with the highest `event` per call, and the totals per call by where the code comes from. */
export function summarize(costs: FunctionCosts, calls: number, top: number): Record<string, unknown> {
  const perCall = (n: number): number => Math.round((n / calls) * 10) / 10;
  const byOrigin = new Map<string, number[]>();
  for (const [name, values] of costs.byFunction) {
    const origin = originOf(name);
    const sum = byOrigin.get(origin) ?? new Array<number>(costs.events.length).fill(0);
    values.forEach((v, i) => (sum[i]! += v));
    byOrigin.set(origin, sum);
  }
  const rows = (map: ReadonlyMap<string, readonly number[]>, event: number, limit: number): Array<Record<string, unknown>> =>
    [...map]
      .sort((a, b) => b[1][event]! - a[1][event]!)
      .slice(0, limit)
      .map(([name, values]) => ({ name, ...Object.fromEntries(costs.events.map((e, i) => [e, perCall(values[i]!)])) }));
  const ranked = costs.events.filter((e) => ['Ir', 'I1mr', 'D1mr'].includes(e));
  return {
    byOrigin: rows(byOrigin, 0, byOrigin.size),
    top: Object.fromEntries(ranked.map((e) => [e, rows(costs.byFunction, costs.events.indexOf(e), top)])),
  };
}

/**
 * Where a function's code comes from: the peer's own modules (dist/src/<dir>), a package
 * (node_modules/<name>), Node's JavaScript (node:internal/<dir>), V8's builtins, or a native object file.
 */
function originOf(name: string): string {
  if (name.startsWith('Builtin:') || name.startsWith('BytecodeHandler:') || name.startsWith('Stub:')) return 'V8 builtins';
  if (name.startsWith('JS:')) {
    const m = /(node:internal\/[a-z_]+|node:[a-z_]+|node_modules\/(?:@[^/]+\/)?[^/]+|dist\/src\/[a-z-]+|dist\/bench)/.exec(name);
    return m === null ? 'JS (other)' : m[1]!;
  }
  const object = /\[([^\]]+)\]$/.exec(name);
  return `native ${object === null ? '?' : object[1]}`;
}
