/** Which methods clients may call: glob allow and deny lists from the config. */

export interface MethodPolicyConfig {
  allow: readonly string[];
  deny: readonly string[];
}

export type MethodVerdict = 'allowed' | 'denied' | 'unknown';

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
      if (deny.some((pattern) => pattern.test(method))) verdict = 'denied';
      else if (allow.some((pattern) => pattern.test(method))) verdict = 'allowed';
      else verdict = 'unknown';
      // Bounded: method names come from clients.
      if (cache.size < 4096) cache.set(method, verdict);
    }
    return verdict;
  };
}
