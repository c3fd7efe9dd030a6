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

/** Hide user:password, query values, and path segments that are not known words, of a node URL. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.username || parsed.password) {
      parsed.username = parsed.username ? '***' : '';
      parsed.password = parsed.password ? '***' : '';
    }
    for (const key of [...parsed.searchParams.keys()]) parsed.searchParams.set(key, '***');
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
