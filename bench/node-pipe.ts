// The least any Node process can add to a call: a TCP byte pipe (node:net) in front of the node.
// Each client connection gets its own connection to the node and every chunk is written on as it
// arrives, both ways, with Nagle off; nothing is parsed, so WebSocket upgrades and HTTP requests
// pass through unchanged. What it adds over direct is one more process on the path: two more reads
// and writes per call and the wakes of an event loop. A latency target that this pipe misses in the
// benchmark's placement is out of reach for any Node gateway on that machine (BENCHMARKS.md).
//
//   node dist/bench/node-pipe.js --upstream-port PORT [--port 0] [--max-seconds 900]
import { createConnection, createServer, type Socket } from 'node:net';
import { applyHelperThreadPriority } from '../src/runtime/helper-threads.js';
import { num } from './process-util.js';
import { SERVER_OPTIONS, announceListening } from './tool-server.js';
import { toolArgs } from './tool-args.js';

const args = toolArgs(import.meta.url, {
  ...SERVER_OPTIONS,
  'upstream-port': { type: 'string' },
});
const upstreamPort = num(args['upstream-port'], Number.NaN, 'upstream-port');
if (!Number.isInteger(upstreamPort)) throw new Error('--upstream-port PORT is required');

/**
 * Forward every chunk from `from` to `to` at once, pausing `from` while `to` is backed up; either
 * side closing closes the other.
 */
function forward(from: Socket, to: Socket): void {
  from.on('data', (chunk: Buffer) => {
    if (to.write(chunk)) return;
    from.pause();
    to.once('drain', () => from.resume());
  });
  from.on('close', () => to.destroy());
  from.on('error', () => to.destroy());
}

const server = createServer({ noDelay: true }, (client) => {
  const node = createConnection({ host: '127.0.0.1', port: upstreamPort, noDelay: true });
  forward(client, node);
  forward(node, client);
});

await applyHelperThreadPriority('auto');
server.listen(num(args.port, 0, 'port'), args.host, () => {
  const address = server.address();
  announceListening('node-pipe', typeof address === 'object' && address !== null ? address.port : 0, args, () => server.close());
});
