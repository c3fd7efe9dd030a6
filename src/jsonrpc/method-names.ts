/**
 * One string per method name. A name parsed from a request is a new string each time, and every
 * Map, Set or property lookup by it (method policy, routing rules, request bytes, metrics: seven on
 * a plain call) hashes it and compares it character by character with the key it finds. The
 * canonical string is internalized (taken from a property key): V8 compares such strings by
 * address, and its hash is computed once.
 */
const NAMES = new Map<string, string>();
/** Bounded: names come from clients; past the bound a name is used as it came. */
const MAX_NAMES = 4096;

export function canonicalMethod(method: string): string {
  let name = NAMES.get(method);
  if (name === undefined) {
    name = Object.keys({ [method]: true })[0] ?? method;
    if (NAMES.size < MAX_NAMES) NAMES.set(name, name);
  }
  return name;
}

/**
 * The last canonical name read under each hash (direct-mapped, so bounded). A lookup in NAMES by a
 * fresh name computes its hash and compares it with each key of its length in the bucket through
 * V8's runtime (names of 13 characters or more are views into the request); a caller that reads
 * the name character by character anyway computes a hash for nothing, and one comparison with the
 * slot's name is left. Callgrind: about 500 fewer instructions per call.
 */
const RECENT = new Array<string | undefined>(256).fill(undefined);

/** canonicalMethod for a name the caller has hashed (any hash of its characters). */
export function recentMethod(method: string, hash: number): string {
  const slot = hash & (RECENT.length - 1);
  const recent = RECENT[slot];
  if (recent !== undefined && recent === method) return recent;
  const name = canonicalMethod(method);
  RECENT[slot] = name;
  return name;
}
