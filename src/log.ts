/** The pino root logger: JSON lines on stdout (stdout-writer.ts), credentials in upstream URLs redacted. */
import { createHash } from 'node:crypto';
import { pino, type DestinationStream, type Logger } from 'pino';
import { stdout } from './stdout-writer.js';

export type { Logger };

/**
 * URL path segments shown in logs: words providers put around the key (/v3/<key>, /ws/<key>,
 * /eth/mainnet/<key>). A list, not a pattern: a key of lower-case letters looks like any word.
 */
const PATH_WORDS = new Set([
  'api', 'archive', 'arb', 'arbitrum', 'avax', 'avalanche', 'base', 'bc', 'blast', 'bnb', 'bsc', 'celo', 'eth', 'eth2',
  'ethereum', 'evm', 'ext', 'fantom', 'ftm', 'full', 'gnosis', 'goerli', 'holesky', 'hoodi', 'http', 'https', 'linea',
  'mainnet', 'mantle', 'matic', 'node', 'nodes', 'op', 'optimism', 'polygon', 'public', 'rpc', 'scroll', 'sepolia',
  'socket', 'stream', 'testnet', 'websocket', 'ws', 'wss', 'xdai', 'zksync',
]);
const VERSION = /^v[0-9]{1,2}$/;

function shownInLogs(segment: string): boolean {
  return PATH_WORDS.has(segment) || VERSION.test(segment);
}

/**
 * Hide user:password, query values (and a parameter's name when it has no value: `?<key>` is a key
 * written alone), and path segments that are not known words, of a node URL.
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.username || parsed.password) {
      parsed.username = parsed.username ? '***' : '';
      parsed.password = parsed.password ? '***' : '';
    }
    const pairs = parsed.search.slice(1).split('&').filter((pair) => pair !== '');
    parsed.search = pairs.map((pair) => (pair.includes('=') ? `${pair.slice(0, pair.indexOf('='))}=***` : '***')).join('&');
    // Providers put keys in the path (/v3/<key>, /ws/<key>, /<token>/): only known words (rpc, ws,
    // v3, mainnet) are shown, every other segment hidden, however short.
    const segments = parsed.pathname.split('/').filter(Boolean);
    if (!segments.every(shownInLogs)) {
      parsed.pathname = `/${segments.map((segment) => (shownInLogs(segment) ? segment : '***')).join('/')}`;
    }
    parsed.hash = '';
    return parsed.toString().replaceAll('%2A', '*');
  } catch {
    return '<invalid url>';
  }
}

/** The shortest hidden part of a node's URL or headers looked for in text it sent back (hideParts). */
const HIDDEN_PART_MIN = 4;

/**
 * What logs never show of a node: what redactUrl hides of its URL (user, password, query values,
 * path segments that are not known words), each as written and percent-decoded, and its handshake
 * headers' values and their words (`Bearer <token>`). A refusal page that echoes the request
 * (Express's "Cannot GET /ws/<key>") carries them.
 */
export function hiddenPartsOf(url: string, headers: Readonly<Record<string, string>> = {}): string[] {
  const raw = Object.values(headers).flatMap((value) => [value, ...value.split(/\s+/)]);
  try {
    const parsed = new URL(url);
    raw.push(parsed.username, parsed.password, ...parsed.search.slice(1).split('&').map((pair) => pair.slice(pair.indexOf('=') + 1)));
    raw.push(...parsed.pathname.split('/').filter((segment) => segment !== '' && !shownInLogs(segment)));
  } catch {
    // not a URL: nothing of it is shown either
  }
  const parts = new Set<string>();
  for (const part of raw) {
    parts.add(part);
    try {
      parts.add(decodeURIComponent(part.replaceAll('+', ' ')));
    } catch {
      // not valid percent-encoding: as written only
    }
  }
  return [...parts].filter((part) => part.length >= HIDDEN_PART_MIN);
}

/** `text` with each of `parts` (hiddenPartsOf, header values) shown as `***`, longest first. */
export function hideParts(text: string, parts: readonly string[]): string {
  let shown = text;
  for (const part of [...parts].sort((a, b) => b.length - a.length)) {
    if (part.length >= HIDDEN_PART_MIN) shown = shown.replaceAll(part, '***');
  }
  return shown;
}

/**
 * A session key as logs show it: an IP as it is; an API key (query, header or path) by its kind and
 * a short digest, enough to tell sessions apart and find one's lines, never the key itself.
 */
export function sessionLabel(key: string): string {
  if (key.startsWith('ip:')) return key;
  const colon = key.indexOf(':');
  return `${key.slice(0, colon + 1)}sha256:${createHash('sha256').update(key).digest('hex').slice(0, 12)}`;
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'evmux' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: ['headers.authorization', 'headers["x-api-key"]'], censor: '[redacted]' },
    },
    destination ?? stdout(),
  );
}
