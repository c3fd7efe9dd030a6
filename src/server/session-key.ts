/**
 * A client's session key (`subscriptions.sessionKey`): what pins it to a node, and what its rate
 * limit, fair-queue turn and writer node are kept by. Read from the query, a header or the first
 * path segment, else the client's IP. A key longer than MAX_KEY_CHARS is kept as its SHA-256
 * (`query~sha256:…`, a form no key as written takes, `query:…`): keys come from clients, and every distinct one may be held for a while (the writer nodes keep up to
 * 100,000), so 10,000 calls with 10 KB keys held 100 MB.
 */
import { createHash } from 'node:crypto';
import type { RequestInfo } from './front-end.js';

export interface SessionKeySettings {
  source: 'ip' | 'query' | 'header' | 'path';
  name: string;
}

export const MAX_KEY_CHARS = 128;

export function sessionKeyOf(info: RequestInfo, ip: string, settings: SessionKeySettings): string {
  const { source, name } = settings;
  const value =
    source === 'query'
      ? new URLSearchParams(info.query).get(name)
      : source === 'header'
        ? info.headers[name.toLowerCase()]
        : source === 'path'
          ? info.path.split('/')[1]
          : undefined;
  if (value === undefined || value === null || value === '') return `ip:${ip}`;
  return value.length > MAX_KEY_CHARS ? `${source}~sha256:${createHash('sha256').update(value).digest('hex')}` : `${source}:${value}`;
}
