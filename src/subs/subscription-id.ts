/**
 * Subscription ids issued by evmux. An id only has to be unique within one connection, so it is
 * derived from the normalized filter: every client of a topic gets the same id and therefore the
 * same notification bytes, which is what lets one serialized frame be published to all of them.
 * A second identical subscription on one connection gets the next variant.
 */
import { createHash } from 'node:crypto';

const cache = new Map<string, string>();

/**
 * Fingerprints up to this long are memoized. A logs filter of 1,000 addresses has a 44 KB one,
 * which the memo would keep after its last subscription ended (10,000 of them: 440 MB).
 */
const MEMO_MAX_CHARS = 512;

export function subscriptionId(fingerprint: string, variant: number): string {
  const key = `${variant}\u0000${fingerprint}`;
  let id = cache.get(key);
  if (id === undefined) {
    id = `0x${createHash('sha256').update(key).digest('hex').slice(0, 32)}`;
    if (key.length > MEMO_MAX_CHARS) return id;
    // Fingerprints come from clients: keep the memo bounded.
    if (cache.size > 10_000) cache.clear();
    cache.set(key, id);
  }
  return id;
}

/** The notification frame for one subscription id and an already serialized result. */
export function notificationFrame(id: string, resultJson: string): string {
  return `{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"${id}","result":${resultJson}}}`;
}
