/**
 * A node (or the proxy in front of it) that answers the WebSocket handshake with something other
 * than 101: what it said, for the log and /status, and how long it asked evmux to stay away. ws on
 * its own gives only "Unexpected server response: 429": an operator could not tell a wrong API key
 * from a used-up quota or a moved endpoint, and a provider's Retry-After was ignored, so evmux came
 * back on its own backoff and was refused again.
 */
import type { IncomingMessage } from 'node:http';
import { hideParts, redactUrl } from '../log.js';

/** The start of the body kept for the log: enough for a provider's JSON-RPC error or a proxy's one-line page. */
const BODY_CHARS = 200;
/** How long the body may take to arrive; it is not waited for longer. */
const BODY_WAIT_MS = 1000;
/** The longest Retry-After honoured: a node asking for more is asked again after this. */
export const MAX_RETRY_AFTER_MS = 10 * 60_000;

export interface HandshakeRefusal {
  /** e.g. `handshake answered 401 Unauthorized: {"error":"invalid api key"}` */
  reason: string;
  /** the Retry-After the node sent, in ms (at most MAX_RETRY_AFTER_MS); undefined when it sent none */
  retryAfterMs: number | undefined;
}

/**
 * Read what the refusal says: its status, where a redirect points, and the start of its body, with
 * `hidden` (the parts of the node's URL and headers logs never show) shown as `***`: a refusal page
 * may echo the request (Express's 404 "Cannot GET /ws/<key>", Spring's error JSON with its path).
 */
export async function readRefusal(response: IncomingMessage, hidden: readonly string[]): Promise<HandshakeRefusal> {
  const body = hideParts(await bodyStart(response), hidden);
  const status = `${response.statusCode ?? '?'}${response.statusMessage ? ` ${response.statusMessage}` : ''}`;
  const location = response.headers.location;
  // What of the node's URL and headers a redirect echoes is hidden wherever it stands (a key in a host name).
  const shown = location === undefined ? '' : ` (Location: ${hideParts(shownLocation(location), hidden)})`;
  const reason = `handshake answered ${status}${shown}${body !== '' ? `: ${body}` : ''}`;
  return { reason, retryAfterMs: retryAfterMs(response.headers['retry-after']) };
}

/** Stands in for a relative Location's origin while it is redacted. */
const RELATIVE = 'http://relative.invalid';

/**
 * Where a redirect points, its keys hidden as in a node's URL (redactUrl): a provider moving an
 * endpoint echoes the request's path and query, API keys included (`/v3/<key>?apikey=<key>`). A
 * relative Location stays relative.
 */
export function shownLocation(location: string): string {
  if (/^[a-z][a-z0-9+.-]*:/i.test(location)) return redactUrl(location);
  const shown = redactUrl(new URL(location, RELATIVE).toString());
  return shown.startsWith(RELATIVE) ? shown.slice(RELATIVE.length) : shown;
}

/** A Retry-After header's wait in ms: delay-seconds or an HTTP date, at most MAX_RETRY_AFTER_MS. */
export function retryAfterMs(header: string | undefined, now = Date.now()): number | undefined {
  if (header === undefined) return undefined;
  const value = header.trim();
  // An HTTP date starts with the day's name, in each of its three forms.
  const ms = /^\d+$/.test(value) ? Number(value) * 1000 : /^[A-Za-z]/.test(value) ? Date.parse(value) - now : NaN;
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS);
}

/** The first BODY_CHARS characters of the body, on one line, or what came within BODY_WAIT_MS. */
function bodyStart(response: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    let finished = false;
    const done = (): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      response.removeListener('data', onData);
      response.destroy();
      resolve(oneLine(text));
    };
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('utf8');
      if (text.length >= BODY_CHARS) done();
    };
    const timer = setTimeout(done, BODY_WAIT_MS);
    response.on('data', onData);
    response.once('end', done);
    response.once('error', done);
  });
}

function oneLine(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > BODY_CHARS ? `${line.slice(0, BODY_CHARS)}…` : line;
}
