/**
 * Read your own writes: the node each client last sent a transaction through, for a while. Nodes
 * learn of a transaction in their own time (a peer passes it on within moments, or never, for a
 * node that is not peered), so a wallet that sends one and then asks for its pending nonce, the
 * transaction or its receipt through a balancer may hear of it from a node that has not seen it
 * yet: a nonce it already used, a null. Those calls, and its next sends, go to the node that took
 * the send while it is usable.
 *
 * Clients are keyed by session key (an IP, or an API key). Only clients that sent something lately
 * are kept, so read-only clients (indexers) are balanced as before.
 */
import { performance } from 'node:perf_hooks';

/** How long after its last send a client's pool-dependent calls follow that node. */
export const WRITE_AFFINITY_MS = 30_000;

/** Clients remembered at most; the one whose last send is oldest is forgotten first. */
export const MAX_WRITERS = 100_000;

/** Calls whose answer depends on what a node's transaction pool holds, or adds to it. */
const POOL_DEPENDENT = new Set([
  // viem prepares a transaction with it where a node has it: the node fills in the pending nonce
  'eth_fillTransaction',
  'eth_getTransactionCount',
  'eth_getTransactionByHash',
  'eth_getTransactionReceipt',
  'eth_getTransactionBySenderAndNonce',
  'eth_sendRawTransaction',
  'eth_sendRawTransactionConditional',
  'eth_sendRawTransactionSync',
  'eth_sendTransaction',
]);

export function isPoolDependent(method: string): boolean {
  return POOL_DEPENDENT.has(method);
}

export class RecentWriters {
  readonly #ttlMs: number;
  readonly #max: number;
  /** key -> [node name, when it last took a send]; insertion order is the order of last sends */
  readonly #byClient = new Map<string, { node: string; at: number }>();

  constructor(ttlMs = WRITE_AFFINITY_MS, max = MAX_WRITERS) {
    this.#ttlMs = ttlMs;
    this.#max = max;
  }

  /** Whether any client is remembered: callers skip working out a session key when none is. */
  get empty(): boolean {
    return this.#byClient.size === 0;
  }

  /** `node` took a send of the client's. */
  note(client: string, node: string, now = performance.now()): void {
    this.#byClient.delete(client);
    this.#byClient.set(client, { node, at: now });
    this.#forgetOld(now);
  }

  /** The node the client sent through lately, if it did. */
  nodeOf(client: string, now = performance.now()): string | undefined {
    const entry = this.#byClient.get(client);
    if (entry === undefined) return undefined;
    if (now - entry.at < this.#ttlMs) return entry.node;
    this.#byClient.delete(client);
    return undefined;
  }

  #forgetOld(now: number): void {
    for (const [client, entry] of this.#byClient) {
      if (this.#byClient.size <= this.#max && now - entry.at < this.#ttlMs) return;
      this.#byClient.delete(client);
    }
  }
}
