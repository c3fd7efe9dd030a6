/** Which methods clients may call: glob allow and deny lists from the config. */

export interface MethodPolicyConfig {
  allow: readonly string[];
  deny: readonly string[];
}

export type MethodVerdict = 'allowed' | 'denied' | 'unknown';

/**
 * Every Ethereum method name is letters, digits and underscores. A glob such as `eth_*` admits any
 * suffix, and a name like `"eth_\ud800"` reached the node, which cannot read it (anvil answers
 * under id null): such names are unknown whatever the lists say.
 */
const METHOD_NAME = /^[A-Za-z0-9_]+$/;

function globToRegExp(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replaceAll('*', '.*');
  return new RegExp(`^${escaped}$`);
}

export function createMethodPolicy(config: MethodPolicyConfig): (method: string) => MethodVerdict {
  const allow = config.allow.map(globToRegExp);
  const deny = config.deny.map(globToRegExp);
  const cache = new Map<string, MethodVerdict>();
  return (method) => {
    let verdict = cache.get(method);
    if (verdict === undefined) {
      if (!METHOD_NAME.test(method)) verdict = 'unknown';
      else if (deny.some((pattern) => pattern.test(method))) verdict = 'denied';
      else if (allow.some((pattern) => pattern.test(method))) verdict = 'allowed';
      else verdict = 'unknown';
      // Bounded: method names come from clients.
      if (cache.size < 4096) cache.set(method, verdict);
    }
    return verdict;
  };
}
