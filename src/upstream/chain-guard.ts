/**
 * Every upstream must serve the same chain. A node URL with a typo that reaches another network
 * would otherwise answer balances, nonces and blocks of the wrong chain to the clients routed to it,
 * and mix its heads into their streams. Every socket to a node shows its chain when it opens,
 * before it carries any traffic (a load balancer's URL reaches a backend per socket, and any one
 * socket may reconnect to another): its `eth_chainId`, and its genesis block's hash, which tells
 * apart networks that share a chain id (every anvil and hardhat devnet is 31337). One that disagrees
 * stays closed.
 *
 * The chain is `chainId` from the config when set. Otherwise it is learned from the first node to
 * answer, and a node that then disagrees is refused with an error naming both ids (set `chainId`
 * to say which is right). The genesis hash is learned from the first socket to show one, and held
 * while a socket that showed it is open: once none is (every node restarted, as an anvil or
 * hardhat devnet makes a new genesis block at each start), the next socket to show one sets it anew.
 *
 * The network id (`net_version`) is learned beside the check, from the first socket that passed it
 * to answer one: viem's WebSocket clients send `net_version` every 30 s to keep their sockets open,
 * and with it known they cost no node a call. It is not part of the verdict: a node that does not
 * serve `net_version` (or is slow to) is judged as before.
 */
import { isHash, quantity } from '../jsonrpc/hex.js';
import { replyResult, type UpstreamReply } from './reply.js';

export type ChainVerdict = { ok: true } | { ok: false; reason: string };

/** One request on the socket being checked. */
export type AskSocket = (method: string, params: unknown[]) => Promise<UpstreamReply>;

/** A socket's verdict: refused (why), or passed; `release` once a socket that passed has closed. */
export interface SocketVerdict {
  refusal?: string;
  release?: () => void;
}

export class ChainGuard {
  /** The chain id as `eth_chainId` writes it, once known. */
  chainIdHex: string | undefined;
  /** The network id as a node of the chain answered `net_version`, once one did. */
  netVersion: string | undefined;
  #expected: bigint | undefined;
  readonly #configured: boolean;
  #genesisHash: string | undefined;
  /** sockets open now that showed #genesisHash */
  #holders = 0;

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

  /**
   * Whether the node a socket reached serves the pool's chain. Throws when it cannot tell (the
   * node failed to answer). A node that does not give its genesis block (null, an error) is judged
   * by its chain id alone.
   */
  async checkSocket(ask: AskSocket): Promise<SocketVerdict> {
    const [chainId, genesis] = await Promise.all([ask('eth_chainId', []), ask('eth_getBlockByNumber', ['0x0', false])]);
    if (chainId.error !== undefined) throw new Error(`eth_chainId failed: ${chainId.error.message}`);
    const verdict = this.check(replyResult(chainId));
    if (!verdict.ok) return { refusal: verdict.reason };
    const hash = genesis.error === undefined ? hashOf(replyResult(genesis)) : undefined;
    if (hash !== undefined && this.#holders > 0 && hash !== this.#genesisHash) {
      return { refusal: `its genesis block is ${hash}, not ${this.#genesisHash} (the nodes evmux is connected to): another network with chain id ${this.#expected}` };
    }
    if (this.netVersion === undefined) this.#learnNetVersion(ask);
    if (hash === undefined) return {};
    this.#genesisHash = hash;
    this.#holders++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.#holders--;
      },
    };
  }

  #learnNetVersion(ask: AskSocket): void {
    ask('net_version', []).then(
      (reply) => {
        const version = reply.error === undefined ? replyResult(reply) : undefined;
        if (this.netVersion === undefined && typeof version === 'string' && NETWORK_ID.test(version)) this.netVersion = version;
      },
      () => {},
    );
  }

  #learn(chainId: bigint): void {
    this.#expected = chainId;
    // Written once here: eth_chainId calls read it on every call.
    this.chainIdHex = `0x${chainId.toString(16)}`;
  }
}

/** A network id as nodes write it: a decimal number (geth: "1"; a few write hex). */
const NETWORK_ID = /^(?:[0-9]{1,30}|0x[0-9a-fA-F]{1,30})$/;

function hashOf(block: unknown): string | undefined {
  if (typeof block !== 'object' || block === null) return undefined;
  const hash = (block as { hash?: unknown }).hash;
  return isHash(hash) ? hash.toLowerCase() : undefined;
}
