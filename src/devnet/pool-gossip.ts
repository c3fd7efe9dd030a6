import type { Hex } from 'viem';
import type { AnvilRpc } from './anvil-rpc.js';

/**
 * A transaction a client sent to one node of the devnet (through evmux or straight to the node),
 * which the devnet passes on to every node, as a network's gossip would.
 */
export interface GossipedTransaction {
  readonly hash: Hex;
  /** Lower case, as anvil writes it. */
  readonly from: Hex;
  readonly nonce: number;
  readonly raw: Hex;
}

interface RpcTransaction {
  hash: Hex;
  from: Hex;
  nonce: Hex;
}

interface TxPoolContent {
  pending: Record<string, Record<string, RpcTransaction>>;
}

/**
 * Take the transactions ready to be mined out of a node's pool: read them, then drop them there,
 * so the node cannot mine them ahead of (or in another order than) the other nodes.
 * Queued ones (behind a nonce gap) stay: anvil_dropTransaction does not drop them, and they are
 * not mined until the gap is filled, which a block then checks (see LockstepNode).
 */
export async function takeReadyTransactions(rpc: AnvilRpc): Promise<GossipedTransaction[]> {
  const content = await rpc.call<TxPoolContent>('txpool_content');
  const ready = Object.values(content.pending).flatMap((byNonce) => Object.values(byNonce));
  // In parallel, to keep short the moment in which a send a client chains onto one of these
  // (the next nonce) would be dropped with it: anvil drops a transaction's dependents too.
  const taken = await withRawBytes(rpc, ready);
  await Promise.all(taken.map((tx) => rpc.call('anvil_dropTransaction', [tx.hash])));
  return taken;
}

/** Transactions a node has mined or holds, by hash, with their signed bytes. */
export async function readTransactions(rpc: AnvilRpc, hashes: readonly Hex[]): Promise<GossipedTransaction[]> {
  const found = await Promise.all(hashes.map((hash) => rpc.call<RpcTransaction | null>('eth_getTransactionByHash', [hash])));
  return withRawBytes(rpc, found.filter((tx) => tx !== null));
}

async function withRawBytes(rpc: AnvilRpc, txs: readonly RpcTransaction[]): Promise<GossipedTransaction[]> {
  const raws = await Promise.all(txs.map((tx) => rpc.call<Hex | null>('eth_getRawTransactionByHash', [tx.hash])));
  return txs.flatMap((tx, k) => {
    const raw = raws[k];
    // Gone meanwhile (mined or dropped): nothing to pass on.
    if (raw === undefined || raw === null) return [];
    return [{ hash: tx.hash, from: tx.from.toLowerCase() as Hex, nonce: Number(tx.nonce), raw }];
  });
}

/** Each transaction once, by sender then nonce: the same list whichever node held what. */
export function gossipOrder(txs: readonly GossipedTransaction[]): GossipedTransaction[] {
  const byHash = new Map(txs.map((tx) => [tx.hash, tx]));
  return [...byHash.values()].sort((a, b) => (a.from === b.from ? a.nonce - b.nonce : a.from < b.from ? -1 : 1));
}

/**
 * Whether a block a node mined holds only transactions of its record, in the record's order
 * (transactions every node rejected are missing from both alike).
 */
export function minedAsRecorded(mined: readonly Hex[], recorded: readonly Hex[]): boolean {
  let next = 0;
  for (const hash of mined) {
    next = recorded.indexOf(hash, next) + 1;
    if (next === 0) return false;
  }
  return true;
}
