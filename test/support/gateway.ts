/**
 * Start an in-process evmux in front of the given upstream URLs for a test. Settings are the real
 * defaults made faster (probe, heartbeat, grace) unless the test overrides them.
 */
import { Writable } from 'node:stream';
import { parseConfig, type Config, type UpstreamConfig } from '../../src/config/schema.js';
import { Gateway } from '../../src/gateway.js';
import { createLogger } from '../../src/log.js';
import { listenAddress } from '../../src/server/listen-error.js';
import { matchingSamples } from './prom-text.js';

export interface TestGateway {
  gateway: Gateway;
  config: Config;
  wsUrl: string;
  httpUrl: string;
  /** structured log lines emitted so far */
  logs: Array<Record<string, unknown>>;
  /** GET a path and return status + body */
  get(path: string): Promise<{ status: number; body: string }>;
  /** the value of one Prometheus sample, e.g. metric('evmux_upstream_subscriptions', { upstream: 'node0', kind: 'newHeads' }) */
  metric(name: string, labels?: Record<string, string>): Promise<number | undefined>;
  close(): Promise<void>;
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

function merge(base: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(extra)) {
    const current = out[key];
    out[key] =
      value !== null && typeof value === 'object' && !Array.isArray(value) && current !== null && typeof current === 'object' && !Array.isArray(current)
        ? merge(current as Record<string, unknown>, value as Record<string, unknown>)
        : value;
  }
  return out;
}

export async function startGateway(
  upstreams: Array<string | ({ name: string; url: string } & Partial<Pick<UpstreamConfig, 'weight' | 'maxConcurrency' | 'maxQueue' | 'maxBytesInFlight' | 'role' | 'streamSocket' | 'connections' | 'headers'>>)>,
  overrides: DeepPartial<Omit<Config, 'upstreams'>> = {},
  options: { waitReady?: boolean; logLevel?: string } = {},
): Promise<TestGateway> {
  const raw = merge(
    {
      host: '127.0.0.1',
      port: 0,
      logLevel: options.logLevel ?? 'info',
      upstreams: upstreams.map((upstream, index) => (typeof upstream === 'string' ? { name: `node${index}`, url: upstream } : upstream)),
      health: { probeIntervalMs: 250, probeTimeoutMs: 500, failureThreshold: 2, recoveryThreshold: 2, stallMs: 5000 },
      heartbeat: { intervalMs: 500, timeoutMs: 1000 },
      reconnect: { baseMs: 50, maxMs: 500 },
      requestTimeoutMs: 2000,
      subscriptions: { gracePeriodMs: 1000, holdDownMs: 1000 },
      shutdownGraceMs: 1000,
    },
    overrides as Record<string, unknown>,
  );
  const config = parseConfig(raw);
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) {
        if (line.trim() !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
      }
      callback();
    },
  });
  const gateway = await Gateway.start(config, createLogger(config.logLevel, sink));
  if (options.waitReady !== false) await gateway.waitUntilReady(15_000);
  // A gateway on the IPv6 loopback alone is reached there; one on any address (0.0.0.0, ::) on 127.0.0.1.
  const base = listenAddress(config.host === '::1' ? '::1' : '127.0.0.1', gateway.port);
  const get = async (path: string): Promise<{ status: number; body: string }> => {
    const response = await fetch(`http://${base}${path}`);
    return { status: response.status, body: await response.text() };
  };
  return {
    gateway,
    config,
    wsUrl: `ws://${base}/`,
    httpUrl: `http://${base}/`,
    logs,
    get,
    metric: async (name, labels = {}) => matchingSamples((await get('/metrics')).body, name, labels)[0],
    close: () => gateway.close(),
  };
}
