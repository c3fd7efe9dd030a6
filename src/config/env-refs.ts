/**
 * `${NAME}` in a config file's string values is replaced by the environment variable NAME, so
 * secrets (API keys in upstream URLs, Authorization headers) can come from the environment (a
 * Kubernetes Secret, a systemd EnvironmentFile) instead of the file. `$${` writes a literal `${`.
 * A variable that is not set is an error naming the key, never an empty string.
 */
import { ConfigError, keyPath } from './schema.js';

/** A reference, closed or not: one without its `}` is an error, not text sent on to the node. */
const REFERENCE = /\$(\$?)\{([^}]*)(\}?)/g;
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

const where = (path: ReadonlyArray<string | number>): string => keyPath(path) || '(root)';

function expandString(text: string, env: NodeJS.ProcessEnv, path: ReadonlyArray<string | number>): string {
  if (!text.includes('${')) return text;
  return text.replace(REFERENCE, (whole, escaped: string, name: string, closed: string) => {
    if (escaped !== '') return whole.slice(1);
    if (closed === '') {
      throw new ConfigError(`${where(path)}: \${${name} has no closing } (use \${NAME}, or $\${ for a literal \${)`);
    }
    if (!NAME.test(name)) {
      throw new ConfigError(`${where(path)}: \${${name}} is not an environment variable reference (use \${NAME} with letters, digits and _, or $\${ for a literal \${)`);
    }
    // Its own string, not a member every object has (${constructor}).
    const value = Object.hasOwn(env, name) ? env[name] : undefined;
    if (typeof value !== 'string') throw new ConfigError(`${where(path)}: environment variable ${name} is not set`);
    return value;
  });
}

/** A copy of `value` with every `${NAME}` in its strings replaced from `env`. */
export function expandEnvRefs(value: unknown, env: NodeJS.ProcessEnv, path: Array<string | number> = []): unknown {
  if (typeof value === 'string') return expandString(value, env, path);
  if (Array.isArray(value)) return value.map((item, index) => expandEnvRefs(item, env, [...path, index]));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, expandEnvRefs(item, env, [...path, key])]));
  }
  return value;
}
