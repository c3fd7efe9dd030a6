/**
 * A bare WebSocket JSON-RPC client for tests: keeps every frame it receives, so a test can wait
 * for a reply or notification, or assert that nothing matching arrived (hangs, stalls).
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { WebSocket, type ClientOptions } from 'ws';

export interface Frame {
  raw: string;
  json: Record<string, unknown> | unknown[] | undefined;
}

export type FramePredicate = (frame: Frame) => boolean;

/** A bare ws client that keeps every frame, so tests can assert on what did or did not arrive. */
export class Probe {
  readonly ws: WebSocket;
  readonly #inbox: Frame[] = [];
  readonly #wakers = new Set<() => boolean>();
  #nextId = 1;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data) => {
      const raw = String(data);
      let json: Frame['json'];
      try {
        json = JSON.parse(raw) as Frame['json'];
      } catch {
        json = undefined;
      }
      this.#inbox.push({ raw, json });
      for (const wake of [...this.#wakers]) wake();
    });
  }

  static async open(url: string, t: TestContext, options?: ClientOptions): Promise<Probe> {
    const ws = new WebSocket(url, options);
    t.after(() => ws.terminate());
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    return new Probe(ws);
  }

  /** Sends a string as is, anything else as JSON. */
  send(payload: unknown): void {
    this.ws.send(typeof payload === 'string' ? payload : JSON.stringify(payload));
  }

  async request(method: string, params: unknown[] = [], timeoutMs = 1000): Promise<Record<string, unknown>> {
    const id = this.#nextId++;
    this.ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    const frame = await this.waitFor((f) => isObject(f.json) && f.json['id'] === id, timeoutMs);
    return frame.json as Record<string, unknown>;
  }

  async call(method: string, params: unknown[] = []): Promise<unknown> {
    const reply = await this.request(method, params);
    assert.ok('result' in reply, `${method} failed: ${JSON.stringify(reply)}`);
    return reply['result'];
  }

  waitFor(pick: FramePredicate, timeoutMs = 1000): Promise<Frame> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const index = this.#inbox.findIndex(pick);
        if (index < 0) return false;
        cleanup();
        resolve(this.#inbox.splice(index, 1)[0] as Frame);
        return true;
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no matching frame within ${timeoutMs} ms`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.#wakers.delete(check);
      };
      if (!check()) this.#wakers.add(check);
    });
  }

  /** Resolves if no matching frame arrives within ms; rejects with the frame otherwise. */
  async expectNone(pick: FramePredicate, ms: number): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    const found = this.#inbox.find(pick);
    assert.equal(found, undefined, `unexpected frame ${found?.raw ?? ''}`);
  }

  notification(subscription: unknown, timeoutMs = 1000): Promise<Record<string, unknown>> {
    return this.waitFor((f) => subscriptionOf(f) === subscription, timeoutMs).then((f) => resultOf(f));
  }
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function subscriptionOf(frame: Frame): unknown {
  if (!isObject(frame.json) || frame.json['method'] !== 'eth_subscription') return undefined;
  const params = frame.json['params'];
  return isObject(params) ? params['subscription'] : undefined;
}

export function resultOf(frame: Frame): Record<string, unknown> {
  const params = (frame.json as Record<string, unknown>)['params'] as Record<string, unknown>;
  return params['result'] as Record<string, unknown>;
}
