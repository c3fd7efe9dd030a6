/**
 * A WebSocket relay on 127.0.0.1 in front of one node that answers a few reads of one block as a
 * node lacking it does, though its head says it has it (a provider's backend a block behind the one
 * that answered eth_blockNumber, a node mid-reorg): an eth_getLogs reaching that block refused with
 * anvil's BlockOutOfRangeError, eth_getBlockByNumber of it answered null. Every other frame passes
 * through untouched. The relays of one test share one MissingBlock: so many such reads in all.
 */
import { WebSocketServer } from 'ws';
import { pipeToNode } from './relay-pipe.js';

/** Which block the relays sharing it lack, for how many more reads, and the reads they answered so. */
export class MissingBlock {
  #block = -1n;
  #reads = 0;
  /** the methods of the reads answered as missing the block, in order */
  readonly answered: string[] = [];

  /** The next `reads` reads of `block`, on any of the relays, are answered as the block missing. */
  arm(block: bigint, reads = 1): void {
    this.#block = block;
    this.#reads = reads;
  }

  /** Whether a read of blocks `from` through `to` is answered as missing; counted as one if so. */
  take(method: string, from: bigint, to: bigint): boolean {
    if (this.#reads === 0 || from > this.#block || to < this.#block) return false;
    this.#reads--;
    this.answered.push(method);
    return true;
  }

  get block(): bigint {
    return this.#block;
  }
}

interface Call {
  id?: unknown;
  method?: unknown;
  params?: unknown[];
}

export class MissingBlockRelay {
  readonly url: string;
  readonly #server: WebSocketServer;

  private constructor(server: WebSocketServer, port: number) {
    this.#server = server;
    this.url = `ws://127.0.0.1:${port}`;
  }

  static async start(targetUrl: string, missing: MissingBlock): Promise<MissingBlockRelay> {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => server.once('listening', resolve));
    server.on('connection', (client) => {
      const { toNode } = pipeToNode(client, targetUrl);
      client.on('message', (data) => {
        const text = String(data);
        const answer = missingAnswer(JSON.parse(text) as Call, missing);
        if (answer !== undefined) client.send(answer);
        else toNode(text);
      });
    });
    return new MissingBlockRelay(server, (server.address() as { port: number }).port);
  }

  async close(): Promise<void> {
    for (const client of this.#server.clients) client.terminate();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** The relay's own answer to a single call that reads the missing block by number, as anvil lacking it answers. */
function missingAnswer(call: Call, missing: MissingBlock): string | undefined {
  const first = call.params?.[0];
  if (call.method === 'eth_getBlockByNumber' && isNumber(first)) {
    if (!missing.take(call.method, BigInt(first), BigInt(first))) return undefined;
    return JSON.stringify({ jsonrpc: '2.0', id: call.id, result: null });
  }
  const range = call.method === 'eth_getLogs' ? (first as { fromBlock?: unknown; toBlock?: unknown } | undefined) : undefined;
  if (!isNumber(range?.fromBlock) || !isNumber(range.toBlock)) return undefined;
  if (!missing.take(call.method as string, BigInt(range.fromBlock), BigInt(range.toBlock))) return undefined;
  const message = `BlockOutOfRangeError: block height is ${missing.block - 1n} but requested was ${missing.block}`;
  return JSON.stringify({ jsonrpc: '2.0', id: call.id, error: { code: -32602, message } });
}

function isNumber(value: unknown): value is string {
  return typeof value === 'string' && value.startsWith('0x');
}
