/** The pino root logger: JSON lines on stdout, credentials in upstream URLs redacted. */
import { createHash } from 'node:crypto';
import { pino, type Logger } from 'pino';

export type { Logger };

/** A URL path segment shown in logs: a lower-case word, or one with a version number (v3, eth2). */
const PATH_WORD = /^[a-z]{1,16}[0-9]{0,2}$/;

/** Hide user:password, query values, and path segments that are not plain words, of a node URL. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.username || parsed.password) {
      parsed.username = parsed.username ? '***' : '';
      parsed.password = parsed.password ? '***' : '';
    }
    for (const key of [...parsed.searchParams.keys()]) parsed.searchParams.set(key, '***');
    // Providers put keys in the path (/v3/<key>, /ws/<key>, /<token>/): only words (rpc, ws, v3,
    // mainnet) are shown, every other segment hidden, however short.
    const segments = parsed.pathname.split('/').filter(Boolean);
    if (segments.some((segment) => !PATH_WORD.test(segment))) {
      parsed.pathname = `/${segments.map((segment) => (PATH_WORD.test(segment) ? segment : '***')).join('/')}`;
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

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: 'evmux' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: ['headers.authorization', 'headers["x-api-key"]'], censor: '[redacted]' },
    },
    destination ?? pino.destination({ sync: false }),
  );
}
