/** Reads a YAML or JSON config file and overlays command-line flags before validation. */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { expandEnvRefs } from './env-refs.js';
import { ConfigError, parseConfig, type Config } from './schema.js';

/**
 * The YAML parser, loaded when a YAML file is read: its 80 modules are not loaded at each start
 * (and, loaded with the rest at startup, each takes an open file for a moment).
 */
function parseYaml(text: string): unknown {
  const yaml = createRequire(import.meta.url)('yaml') as typeof import('yaml');
  return yaml.parse(text);
}

export interface FlagSettings {
  host?: string;
  port?: number;
  logLevel?: string;
  /** `[name=]ws://...` entries; replace the file's upstream list when given */
  upstreams?: string[];
}

/** The settings of a YAML or JSON file as written: its `${NAME}` references are taken from the environment by buildConfig. */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read config file ${path}: ${(error as Error).message}`);
  }
  let value: unknown;
  try {
    value = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new ConfigError(`config file ${path} is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(error as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(`config file ${path} must contain an object of settings`);
  }
  return value as Record<string, unknown>;
}

/** `name=ws://host` or `ws://host` → config entry. */
export function parseUpstreamFlag(flag: string): { name?: string; url: string } {
  // A "=" before the URL's "://" ends a name, whatever the name holds: the schema then says what is
  // wrong with it, where taken for part of the URL it was blamed on the URL.
  const equals = flag.indexOf('=');
  const scheme = flag.indexOf('://');
  if (equals >= 0 && (scheme < 0 || equals < scheme)) return { name: flag.slice(0, equals), url: flag.slice(equals + 1) };
  return { url: flag };
}

/**
 * The file's settings with the flags laid over them, its `${NAME}` references taken from `env`, but
 * not in what a flag replaces (`upstreams` under `--upstream`, `port` under `--port`): taken there
 * too, a variable nobody needed stopped evmux when unset. Flags are taken as they are (the shell
 * expands them).
 */
export function buildConfig(file: Record<string, unknown> | undefined, flags: FlagSettings, env: NodeJS.ProcessEnv = process.env): Config {
  const overrides: Record<string, unknown> = {};
  if (flags.host !== undefined) overrides.host = flags.host;
  if (flags.port !== undefined) overrides.port = flags.port;
  if (flags.logLevel !== undefined) overrides.logLevel = flags.logLevel;
  if (flags.upstreams !== undefined && flags.upstreams.length > 0) {
    overrides.upstreams = flags.upstreams.map(parseUpstreamFlag);
  }
  const kept = Object.fromEntries(Object.entries(file ?? {}).filter(([key]) => !Object.hasOwn(overrides, key)));
  return parseConfig({ ...(expandEnvRefs(kept, env) as Record<string, unknown>), ...overrides });
}
