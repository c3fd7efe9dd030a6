/** The pino root logger: JSON lines on stdout, credentials in upstream URLs redacted. */
import { pino, type Logger } from 'pino';

export type { Logger };

/** Hide user:password and API-key-looking path or query parts of a node URL. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.username || parsed.password) {
      parsed.username = parsed.username ? '***' : '';
      parsed.password = parsed.password ? '***' : '';
    }
    for (const key of [...parsed.searchParams.keys()]) parsed.searchParams.set(key, '***');
    // Providers put keys in the path (/v3/<key>, /ws/<key>): keep the first segment only.
    const segments = parsed.pathname.split('/').filter(Boolean);
    if (segments.some((segment) => /^[A-Za-z0-9_-]{16,}$/.test(segment))) {
      parsed.pathname = `/${segments.map((s) => (/^[A-Za-z0-9_-]{16,}$/.test(s) ? '***' : s)).join('/')}`;
    }
    return parsed.toString().replaceAll('%2A', '*');
  } catch {
    return '<invalid url>';
  }
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
