// What one Prometheus scrape costs evmux's event loop with many clients connected. Each client holds
// a descriptor, and a scrape that looks at every descriptor holds up every client while it does.
// This process opens --fds descriptors on /dev/null (the clients' stand-ins), builds the metrics
// registry evmux builds, and renders /metrics --scrapes times, 20 ms apart: the time each render
// took from call to text, and the event loop's longest delay meanwhile (1 ms resolution).
//
//   node dist/bench/scrape-cost.js [--fds 18000] [--scrapes 30] [--metrics dist/src/metrics.js]
//
// --metrics names the metrics module to measure, so a build of another commit can be compared
// with this one in the same minute. Prints one JSON line.
import { openSync } from 'node:fs';
import { resolve } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { emit, num, sleep } from './process-util.js';
import { toolArgs } from './tool-args.js';

const args = toolArgs(import.meta.url, {
  fds: { type: 'string', default: '18000' },
  scrapes: { type: 'string', default: '30' },
  metrics: { type: 'string' },
});
const fds = num(args.fds, 18_000, 'fds');
const scrapes = num(args.scrapes, 30, 'scrapes');
const modulePath = args.metrics === undefined ? new URL('../src/metrics.js', import.meta.url).href : pathToFileURL(resolve(args.metrics)).href;

interface MetricsLike {
  exposition(): Promise<string>;
}
const { Metrics } = (await import(modulePath)) as { Metrics: new (upstreams: string[]) => MetricsLike };

for (let i = 0; i < fds; i++) openSync('/dev/null', 'r');
const metrics = new Metrics(['a', 'b']);
await metrics.exposition();

const renders: number[] = [];
const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();
for (let i = 0; i < scrapes; i++) {
  const started = performance.now();
  await metrics.exposition();
  renders.push(performance.now() - started);
  await sleep(20);
}
delay.disable();

renders.sort((a, b) => a - b);
const ms = (x: number): number => Math.round(x * 100) / 100;
emit({
  fds,
  scrapes,
  metrics: modulePath,
  renderMs: { p50: ms(renders[Math.floor(renders.length / 2)]!), max: ms(renders.at(-1)!) },
  loopDelayMaxMs: ms(delay.max / 1e6),
});
process.exit(0);
