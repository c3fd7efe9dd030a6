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
