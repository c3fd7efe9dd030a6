// Looking at a running peer from outside: HTTP probes, Prometheus text, and a full GC through
// the V8 inspector (so RSS is read after garbage collection without changing the peer's code).
import { LeanWsClient } from './lean-ws-client.js';
import { sleep } from './process-util.js';
import type { Child } from './children.js';

export async function httpGet(port: number, path: string, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, body: await res.text() };
}

export async function getJson(port: number, path: string): Promise<Record<string, unknown>> {
  const r = await httpGet(port, path);
  return JSON.parse(r.body) as Record<string, unknown>;
}

/** Poll until GET path answers 200; false if the child exits or time runs out. */
export async function waitHttpOk(port: number, path: string, timeoutMs: number, child?: Child): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child !== undefined && !child.running) return false;
    try {
      if ((await httpGet(port, path, 1000)).status === 200) return true;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  return false;
}

export interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** Samples of one metric from Prometheus text exposition. */
export function parseMetric(text: string, name: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== '{' && rest[0] !== ' ') continue;
    const m = /^(?:\{(.*)\})?\s+(\S+)/.exec(rest);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    for (const lm of (m[1] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1] ?? ''] = lm[2] ?? '';
    out.push({ labels, value: Number(m[2]) });
  }
  return out;
}

/** The inspector WebSocket URL a child started with --inspect=127.0.0.1:0 printed on stderr. */
export async function inspectorUrl(child: Child, timeoutMs = 5000): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const m = /Debugger listening on (ws:\/\/\S+)/.exec(child.stderrTail);
    if (m?.[1] !== undefined) return m[1];
    await sleep(50);
  }
  return undefined;
}

/** Run a full GC in the process behind an inspector URL (HeapProfiler.collectGarbage). */
export async function collectGarbage(wsUrl: string, timeoutMs = 10_000): Promise<boolean> {
  const u = new URL(wsUrl);
  let done: (ok: boolean) => void = () => undefined;
  const finished = new Promise<boolean>((resolve) => {
    done = resolve;
  });
  const client = await LeanWsClient.connect({
    host: u.hostname,
    port: Number(u.port),
    path: u.pathname,
    onMessage: (payload) => {
      if (payload.indexOf('"id":1') >= 0) done(payload.indexOf('"error"') < 0);
    },
    onClose: () => done(false),
  });
  client.send('{"id":1,"method":"HeapProfiler.collectGarbage"}');
  const timer = setTimeout(() => done(false), timeoutMs);
  const ok = await finished;
  clearTimeout(timer);
  client.close();
  return ok;
}
