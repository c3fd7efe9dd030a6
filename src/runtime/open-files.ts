/**
 * How many client connections this process can hold: the open-files limit minus a reserve for
 * everything else that needs a descriptor. At the limit, accept() fails with EMFILE, uWebSockets.js
 * retries it in a busy loop (one core at 100 %), health checks and new clients hang in the backlog,
 * and a node connection that drops cannot be made again, so every stream on it stalls. Refusing a
 * WebSocket upgrade past the cap keeps descriptors free for those; connections that never upgrade
 * are left to the descriptor reserve (descriptor-reserve.ts).
 *
 * Node raises its soft limit to the hard one at startup, so the soft limit read here is the one
 * that applies.
 */
import { readFileSync } from 'node:fs';

/** Descriptors kept back at least: node sockets, the admin listener, HTTP clients, Node's own. */
export const MIN_RESERVE = 256;

/** The soft "Max open files" of /proc/<pid>/limits text; undefined when absent or unlimited. */
export function parseOpenFilesLimit(limitsText: string): number | undefined {
  const line = limitsText.split('\n').find((entry) => entry.startsWith('Max open files'));
  const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
  if (soft === undefined || !/^\d+$/.test(soft)) return undefined;
  const limit = Number(soft);
  return Number.isSafeInteger(limit) && limit > 0 ? limit : undefined;
}

/** This process's open-files limit, or undefined where /proc cannot tell (not Linux). */
export function openFilesLimit(): number | undefined {
  try {
    return parseOpenFilesLimit(readFileSync('/proc/self/limits', 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Client connections that leave a reserve of a tenth of the limit, at least MIN_RESERVE; under a
 * small limit, half of it. Undefined (no cap) when the limit is unknown.
 */
export function connectionCap(limit: number | undefined): number | undefined {
  if (limit === undefined) return undefined;
  const reserve = Math.max(MIN_RESERVE, Math.ceil(limit / 10));
  return limit > 2 * reserve ? limit - reserve : Math.max(1, Math.floor(limit / 2));
}
