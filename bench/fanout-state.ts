// Per-client and per-head bookkeeping for the fan-out load generator, kept in typed arrays so
// 15,000 clients cost a few hundred KB and no per-notification allocation.
import { performance } from 'node:perf_hooks';
import { monoMicros } from './chain.js';
import { newHistogram, percentile, summarize, type LatencySummary } from './latency.js';

// performance.now() is monotonic and cheap; anchor it once to CLOCK_MONOTONIC so receive times
// compare with the send stamps other processes write into extraData.
const anchorUs = monoMicros() - performance.now() * 1000;
export const nowUs = (): number => anchorUs + performance.now() * 1000;

interface HeadStat {
  sentUs: number;
  maxUs: number;
  count: number;
  firstRecvUs: number;
  lastRecvUs: number;
}

export class FanoutState {
  readonly last: Float64Array;
  readonly first: Float64Array;
  readonly lost: Float64Array;
  readonly dup: Float64Array;
  readonly received: Float64Array;
  /** Receive time of the first notification after the mark (failover: the kill). */
  readonly afterMark: Float64Array;
  readonly hist = newHistogram();
  readonly #heads = new Map<number, HeadStat>();
  windowStart = Number.POSITIVE_INFINITY;
  cutoff = Number.POSITIVE_INFINITY;
  maxSeen = 0;
  markUs = 0;

  constructor(clients: number) {
    this.last = new Float64Array(clients);
    this.first = new Float64Array(clients);
    this.lost = new Float64Array(clients);
    this.dup = new Float64Array(clients);
    this.received = new Float64Array(clients);
    this.afterMark = new Float64Array(clients);
  }

  /** One newHeads notification for client i: head number n, stamped at sentUs. */
  record(i: number, n: number, sentUs: number, recvUs: number): void {
    this.received[i] = (this.received[i] ?? 0) + 1;
    const last = this.last[i] ?? 0;
    if (last === 0) this.first[i] = n;
    else if (n <= last) this.dup[i] = (this.dup[i] ?? 0) + 1;
    else if (n > last + 1) this.lost[i] = (this.lost[i] ?? 0) + (n - last - 1);
    if (n > last) this.last[i] = n;
    if (n > this.maxSeen) this.maxSeen = n;
    if (this.markUs > 0 && this.afterMark[i] === 0 && recvUs > this.markUs) this.afterMark[i] = recvUs;
    if (n < this.windowStart || n > this.cutoff) return;
    const lat = recvUs - sentUs;
    this.hist.recordValue(Math.max(1, Math.round(lat * 1000)));
    const h = this.#heads.get(n);
    if (h === undefined) this.#heads.set(n, { sentUs, maxUs: lat, count: 1, firstRecvUs: recvUs, lastRecvUs: recvUs });
    else {
      if (lat > h.maxUs) h.maxUs = lat;
      h.count++;
      h.lastRecvUs = recvUs;
    }
  }

  openWindow(): void {
    this.windowStart = this.maxSeen + 1;
  }

  closeWindow(): void {
    this.cutoff = this.maxSeen;
  }

  /** Summary over the measured clients (`include(i)` false for stalled or failed ones). */
  summary(include: (i: number) => boolean, connected: (i: number) => boolean): FanoutSummary {
    let lost = 0;
    let dup = 0;
    let silent = 0;
    let disconnected = 0;
    let measured = 0;
    let clientsWithLoss = 0;
    const end = Number.isFinite(this.cutoff) ? this.cutoff : this.maxSeen;
    for (let i = 0; i < this.last.length; i++) {
      if (!include(i)) continue;
      measured++;
      const last = this.last[i] ?? 0;
      if (last === 0) {
        silent++;
        continue;
      }
      if (!connected(i)) disconnected++;
      // Heads up to the cutoff that never arrived at the end of the run are lost too.
      const tail = last < end ? end - last : 0;
      const l = (this.lost[i] ?? 0) + tail;
      lost += l;
      if (l > 0) clientsWithLoss++;
      dup += this.dup[i] ?? 0;
    }
    const heads = [...this.#heads.entries()].filter(([n]) => n >= this.windowStart && n <= end);
    const lastClient = heads.map(([, h]) => h.maxUs);
    const spread = heads.map(([, h]) => h.lastRecvUs - h.firstRecvUs);
    const r = (x: number): number => Math.round(x * 10) / 10;
    return {
      measuredClients: measured,
      silentClients: silent,
      disconnectedClients: disconnected,
      lost,
      duplicated: dup,
      clientsWithLoss,
      headsInWindow: heads.length,
      windowFirstHead: Number.isFinite(this.windowStart) ? this.windowStart : null,
      windowLastHead: end,
      incompleteHeads: heads.filter(([, h]) => h.count < measured - silent).length,
      latency: summarize(this.hist),
      lastClientUs: {
        p50: r(percentile(lastClient, 50)),
        p90: r(percentile(lastClient, 90)),
        p99: r(percentile(lastClient, 99)),
        max: r(percentile(lastClient, 100)),
      },
      deliverySpreadUs: { p50: r(percentile(spread, 50)), p99: r(percentile(spread, 99)) },
      perHead: heads.map(([n, h]) => [n, Math.round(h.sentUs), r(h.firstRecvUs - h.sentUs), r(h.maxUs)]),
    };
  }

  /** Failover view: time from the mark to each client's first notification after it. */
  markSummary(include: (i: number) => boolean): MarkSummary | null {
    if (this.markUs === 0) return null;
    const delays: number[] = [];
    let never = 0;
    for (let i = 0; i < this.afterMark.length; i++) {
      if (!include(i)) continue;
      const t = this.afterMark[i] ?? 0;
      if (t === 0) never++;
      else delays.push((t - this.markUs) / 1000);
    }
    const r = (x: number): number => Math.round(x * 10) / 10;
    return {
      clients: delays.length + never,
      neverAfterMark: never,
      // min is when the first client (likely on the surviving node) saw the next head; max − min
      // is the extra delay failover added for the slowest client.
      firstAfterMarkMs: {
        min: r(delays.length > 0 ? Math.min(...delays) : 0),
        p50: r(percentile(delays, 50)),
        p99: r(percentile(delays, 99)),
        max: r(percentile(delays, 100)),
      },
    };
  }
}

export interface FanoutSummary {
  measuredClients: number;
  silentClients: number;
  disconnectedClients: number;
  lost: number;
  duplicated: number;
  clientsWithLoss: number;
  headsInWindow: number;
  windowFirstHead: number | null;
  windowLastHead: number;
  incompleteHeads: number;
  latency: LatencySummary;
  lastClientUs: { p50: number; p90: number; p99: number; max: number };
  deliverySpreadUs: { p50: number; p99: number };
  /** Each head in the window: [number, send stamp µs (CLOCK_MONOTONIC), first-client µs, last-client µs]. */
  perHead: [number, number, number, number][];
}

export interface MarkSummary {
  clients: number;
  neverAfterMark: number;
  firstAfterMarkMs: { min: number; p50: number; p99: number; max: number };
}
