// The fan-out baseline: a bare uWebSockets.js server that does the least a gateway could do.
// It answers eth_subscribe with a fixed id per kind ("0x1" newHeads, "0x2" logs), subscribes the
// socket to a topic, and publishes each head's pre-serialized notification to the topic once.
// eth_getBlockByNumber gets the latest ~16 KB block (~256 KB with full transactions), which the
// fan-out tool uses to push stalled clients past their buffer cap.
// Heads come from the same FakeChain as fake-upstream.ts, with the send time in `extraData`.
//
//   node dist/bench/bare-publish.js [--port 0] [--interval-ms 250] [--genesis-ms T]
//                                   [--max-backpressure 1048576] [--max-seconds 900] [--turns COUNT:INDEX:MS]
//
// Clients over --max-backpressure bytes of unsent data are closed (uWS closeOnBackpressureLimit),
// the bare analog of a gateway's per-client send buffer cap.
import uWS from '@trufflesuite/uws-js-unofficial';
import { FakeChain, defaultGenesisMs, monoMicros, notification, parseTurns, startTicker } from './chain.js';
import { firstStringParam, rawValue, stringValue } from './json-scan.js';
import { num } from './process-util.js';
import { SERVER_OPTIONS, listenUws } from './tool-server.js';
import { toolArgs } from './tool-args.js';

const args = toolArgs(import.meta.url, {
  ...SERVER_OPTIONS,
  'interval-ms': { type: 'string' },
  'genesis-ms': { type: 'string' },
  seed: { type: 'string', default: 'evmux-bench' },
  'max-backpressure': { type: 'string' },
  turns: { type: 'string' },
});

const intervalMs = num(args['interval-ms'], 250, 'interval-ms');
const chain = new FakeChain({
  seed: args.seed,
  genesisMs: num(args['genesis-ms'], defaultGenesisMs(intervalMs), 'genesis-ms'),
  intervalMs,
  blockBytes: 16_384,
  ...(args.turns !== undefined && { turns: parseTurns(args.turns) }),
});
let latestBlock = chain.block(chain.headAt(Date.now()), monoMicros());
let latestFull: string | undefined;
const fullBlock = (): string => (latestFull ??= chain.block(chain.headAt(Date.now()), monoMicros(), 256 * 1024));

const TOPICS: Record<string, { topic: string; id: string } | undefined> = {
  newHeads: { topic: 'newHeads', id: '0x1' },
  logs: { topic: 'logs', id: '0x2' },
};
const reply = (id: string, result: string): string => `{"jsonrpc":"2.0","id":${id},"result":${result}}`;
const stats = { connections: 0, published: 0, publishUsTotal: 0, publishUsMax: 0 };
const closeCodes: Record<string, number> = {};

const app = uWS.App();
app.ws('/*', {
  compression: uWS.DISABLED,
  maxPayloadLength: 64 * 1024,
  maxBackpressure: num(args['max-backpressure'], 1024 * 1024, 'max-backpressure'),
  closeOnBackpressureLimit: 1,
  idleTimeout: 0,
  open: () => {
    stats.connections++;
  },
  message: (ws, message) => {
    const buf = Buffer.from(message);
    const id = rawValue(buf, 'id') ?? 'null';
    const method = stringValue(buf, 'method');
    const kind = TOPICS[firstStringParam(buf) ?? ''];
    if (method === 'eth_subscribe' && kind !== undefined) {
      ws.subscribe(kind.topic);
      ws.send(reply(id, `"${kind.id}"`), false);
    } else if (method === 'eth_getBlockByNumber') {
      // ~16 KB, or ~256 KB with full transactions: lets stalled clients be pushed past the cap.
      const full = buf.indexOf('true', buf.indexOf('"params"')) >= 0;
      ws.send(`{"jsonrpc":"2.0","id":${id},"result":${full ? fullBlock() : latestBlock}}`, false);
    } else if (method === 'eth_unsubscribe') {
      const sub = firstStringParam(buf) === '0x1' ? 'newHeads' : 'logs';
      ws.send(reply(id, ws.unsubscribe(sub) ? 'true' : 'false'), false);
    } else {
      ws.send(`{"jsonrpc":"2.0","id":${id},"error":{"code":-32601,"message":"bare publish only subscribes"}}`, false);
    }
  },
  close: (_ws, code) => {
    stats.connections--;
    closeCodes[code] = (closeCodes[code] ?? 0) + 1;
  },
});
app.get('/stats', (res) => {
  const body = {
    pid: process.pid,
    head: chain.headAt(Date.now()),
    subscribers: { newHeads: app.numSubscribers('newHeads'), logs: app.numSubscribers('logs') },
    ...stats,
    closeCodes,
  };
  res.writeHeader('content-type', 'application/json').end(JSON.stringify(body));
});
app.any('/*', (res) => {
  res.writeStatus('404 Not Found').end('not found');
});

function publishHead(n: number): void {
  const stampUs = monoMicros();
  const bytes = notification('0x1', chain.header(n, stampUs));
  app.publish('newHeads', bytes, false);
  const took = monoMicros() - stampUs;
  latestBlock = chain.block(n, stampUs);
  latestFull = undefined;
  stats.published++;
  stats.publishUsTotal += took;
  stats.publishUsMax = Math.max(stats.publishUsMax, took);
}

listenUws(app, 'bare-publish', args, () => {
  const ticker = startTicker(chain, publishHead);
  return { stop: () => ticker.close(), extra: { genesisMs: chain.options.genesisMs, intervalMs } };
});
