/**
 * Every upstream must serve the same chain. A node URL with a typo that reaches another network
 * would otherwise answer balances, nonces and blocks of the wrong chain to the clients routed to it,
 * and mix its heads into their streams. Each node reports its `eth_chainId` when it connects,
 * before it takes any traffic; one that disagrees stays out.
 *
 * The chain is `chainId` from the config when set. Otherwise it is learned from the first node to
 * answer, and a node that then disagrees is refused with an error naming both ids (set `chainId`
 * to say which is right).
 */
import { quantity } from '../jsonrpc/hex.js';

export type ChainVerdict = { ok: true } | { ok: false; reason: string };

export class ChainGuard {
  /** The chain id as `eth_chainId` writes it, once known. */
  chainIdHex: string | undefined;
  #expected: bigint | undefined;
  readonly #configured: boolean;

  constructor(configured: bigint | undefined) {
    this.#configured = configured !== undefined;
    if (configured !== undefined) this.#learn(configured);
  }

  /** Judge a node's `eth_chainId` answer. */
  check(reported: unknown): ChainVerdict {
    const chainId = quantity(reported);
    if (chainId === undefined) return { ok: false, reason: `eth_chainId answered ${JSON.stringify(reported)?.slice(0, 80)}, not a chain id` };
    if (this.#expected === undefined) this.#learn(chainId);
    if (chainId === this.#expected) return { ok: true };
    const source = this.#configured ? 'chainId in the config' : 'the first node to answer';
    return { ok: false, reason: `serves chain ${chainId}, not chain ${this.#expected} (${source})` };
  }

  #learn(chainId: bigint): void {
    this.#expected = chainId;
    // Written once here: eth_chainId calls read it on every call.
    this.chainIdHex = `0x${chainId.toString(16)}`;
  }
}
