import type { Logger } from 'pino';
import type { Hex } from 'viem';
import { AnvilProcess, AnvilStartError, type AnvilGenesis } from './anvil-process.js';
import type { AnvilRpc } from './anvil-rpc.js';
import type { BlockRecord } from './chain-history.js';
import { transactionHash } from '../router/transaction-hash.js';
import { freePort } from './free-port.js';
import type { DevnetNode } from './lockstep-devnet.js';
import { minedAsRecorded, readTransactions, takeReadyTransactions, type GossipedTransaction } from './pool-gossip.js';

const HOST = '127.0.0.1';
const PORT_ATTEMPTS = 5;
/**
 * Every block's base fee, set before each is mined (1 gwei, anvil's genesis base fee). Left to
 * anvil, a block's base fee follows from its parent's, except after anvil_rollback: anvil then
 * prices as if the rolled-back blocks were still there, so a node that replayed a reorged history
 * from genesis (a restart) mined other hashes than the nodes that had rolled back. (Zero would also
 * stay put, but web3.js then offers no EIP-1559 fees.)
 */
const BASE_FEE = '0x3b9aca00';
/**
 * With gossip, how many times in a row one block is mined again because a client's send landed in
 * the node's pool just before evm_mine; past it the sync fails and the next one starts over.
 */
const MAX_REMINES = 5;

/** A node produced a different block hash than the devnet recorded for that height. */
export class LockstepDivergenceError extends Error {
  override readonly name = 'LockstepDivergenceError';
}

interface RpcBlock {
  number: Hex;
  hash: Hex;
  transactions: Hex[];
}

/** Where a node with gossip sends clients' transactions it finds: the devnet's next block. */
export type PassOn = (txs: readonly GossipedTransaction[]) => void;

/**
 * One anvil node of the lockstep devnet and its position relative to the devnet's history.
 *
 * `#applied` is the node's height as far as we know, `#validPrefix` how many of those blocks
 * are still canonical. A reorg or a half-applied block lowers `#validPrefix`; the next `sync`
 * rolls the node back to it (`anvil_rollback`) and replays the rest of the history. One code
 * path thus serves lockstep mining, catching up after hold, restart, and reorg.
 */
export class LockstepNode implements DevnetNode {
  readonly index: number;
  readonly name: string;
  readonly #log: Logger;
  readonly #passOn: PassOn | undefined;
  #port = 0;
  #process: AnvilProcess | undefined;
  #held = false;
  #joining = false;
  #applied = 0;
  #validPrefix = 0;
  /** Unknown state after a failed sync: probe the node before trusting `#applied`. */
  #dirty = false;
  #lock: Promise<void> = Promise.resolve();

  /** `passOn`: gossip on; clients' transactions in the node's pool or blocks go there, never dropped. */
  constructor(index: number, logger: Logger, passOn?: PassOn) {
    this.index = index;
    this.name = `node${index}`;
    this.#log = logger.child({ node: this.name });
    this.#passOn = passOn;
  }

  get port(): number {
    return this.#port;
  }
  get httpUrl(): string {
    return `http://${HOST}:${this.#port}`;
  }
  get wsUrl(): string {
    return `ws://${HOST}:${this.#port}`;
  }
  get running(): boolean {
    return this.#process?.alive ?? false;
  }
  get held(): boolean {
    return this.#held;
  }
  set held(value: boolean) {
    this.#held = value;
  }
  /** Catching up outside the lockstep (after restart or release); lockstep mining skips it. */
  get joining(): boolean {
    return this.#joining;
  }
  set joining(value: boolean) {
    this.#joining = value;
  }
  /** Takes part in lockstep mining right now. */
  get active(): boolean {
    return this.running && !this.#held && !this.#joining;
  }
  /** Process id of the current (or last) anvil child. */
  get pid(): number | undefined {
    return this.#process?.pid;
  }

  /** First start: pick a free port, retrying if someone grabs it before anvil binds. */
  async start(genesis: AnvilGenesis): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const port = await freePort(HOST);
      try {
        await this.#spawn(genesis, port);
        return;
      } catch (error) {
        if (!(error instanceof AnvilStartError && error.portInUse) || attempt >= PORT_ATTEMPTS) throw error;
        this.#log.debug({ port }, 'port taken before anvil could bind it, trying another');
      }
    }
  }

  /** Fresh anvil (genesis only) on the same port, once any sync on the old one has settled. */
  respawn(genesis: AnvilGenesis): Promise<void> {
    return this.#locked(async () => {
      if (this.running) throw new Error(`${this.name} is still running`);
      await this.#spawn(genesis, this.#port);
    });
  }

  /** SIGKILL; not behind the sync lock, so it interrupts a sync in flight like a real crash. */
  async kill(): Promise<void> {
    const proc = this.#process;
    if (proc === undefined) return;
    const wasAlive = proc.alive;
    await proc.kill();
    // Logged once: close() kills every node twice (a restart may have been spawning).
    if (wasAlive) this.#log.info({ pid: proc.pid }, 'anvil killed');
  }

  /** Blocks of `history` at or above `forkPoint + 1` were replaced. */
  invalidateFrom(forkPoint: number): void {
    this.#validPrefix = Math.min(this.#validPrefix, forkPoint);
  }

  /**
   * Bring the node to the end of `history` (which may grow or be cut while this runs).
   * `live`: check every block's hash against the record (lockstep mining); otherwise only the
   * last one (bulk replay, where one extra request per block would slow restarts).
   */
  sync(history: readonly BlockRecord[], live: boolean): Promise<void> {
    return this.#locked(() => this.#syncNow(history, live));
  }

  /**
   * With gossip: mine the block after `history` first, from `draft` and whatever clients sent this
   * node, and say what it holds, which becomes the devnet's record. The node's pool is thus never
   * emptied by hand: dropping a transaction there drops the client's next ones, sent meanwhile, too.
   */
  lead(history: readonly BlockRecord[], draft: Pick<BlockRecord, 'number' | 'timestamp' | 'txs'>): Promise<{ txs: Hex[]; hash: Hex }> {
    return this.#locked(async () => {
      await this.#syncNow(history, true);
      const rpc = this.#rpc();
      await this.#mine(rpc, draft);
      // Until the block is read back: if that fails, the devnet goes on with the draft, which this
      // block need not be, and the next sync probes the node.
      this.#dirty = true;
      const mined = await this.#block(rpc, draft.number);
      const drafted = new Map(draft.txs.map((raw) => [transactionHash(raw), raw]));
      const txs = await Promise.all(mined.transactions.map(async (hash) => drafted.get(hash) ?? rpc.call<Hex>('eth_getRawTransactionByHash', [hash])));
      // The block is valid: the devnet puts it in its history as soon as this returns.
      this.#validPrefix = draft.number;
      this.#dirty = false;
      return { txs, hash: mined.hash };
    });
  }

  /** With gossip: how many transactions are ready to be mined in the node's pool. */
  async readyCount(): Promise<number> {
    return Number((await this.#rpc().call<{ pending: Hex }>('txpool_status')).pending);
  }

  /** With gossip: pass on the transactions ready in the node's pool, taking them out of it. */
  passOnPool(): Promise<void> {
    return this.#locked(async () => {
      if (this.#passOn !== undefined) this.#passOn(await takeReadyTransactions(this.#rpc()));
    });
  }

  async head(): Promise<{ number: bigint; hash: Hex }> {
    const block = await this.#rpc().call<RpcBlock>('eth_getBlockByNumber', ['latest', false]);
    return { number: BigInt(block.number), hash: block.hash };
  }

  async #spawn(genesis: AnvilGenesis, port: number): Promise<void> {
    this.#process = await AnvilProcess.spawn({ genesis, host: HOST, port });
    this.#port = port;
    this.#applied = 0;
    this.#validPrefix = 0;
    this.#dirty = false;
    this.#log.info({ port, pid: this.#process.pid }, 'anvil started');
  }

  #rpc(): AnvilRpc {
    if (this.#process === undefined || !this.#process.alive) throw new Error(`${this.name} is not running`);
    return this.#process.rpc;
  }

  #locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(fn);
    this.#lock = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  async #syncNow(history: readonly BlockRecord[], live: boolean): Promise<void> {
    const rpc = this.#rpc();
    if (this.#dirty) await this.#probe(rpc, history);
    let remines = 0;
    for (;;) {
      if (this.#applied > this.#validPrefix) {
        const depth = this.#applied - this.#validPrefix;
        await rpc.call('anvil_rollback', [depth]);
        await this.#clearPool(rpc);
        this.#log.debug({ depth, to: this.#validPrefix }, 'rolled back');
        this.#applied = this.#validPrefix;
      }
      const block = history[this.#applied];
      if (block === undefined) return;
      await this.#mine(rpc, block);
      if (!(await this.#keptToRecord(rpc, block))) {
        remines += 1;
        if (remines > MAX_REMINES) throw new Error(`${this.name} kept mining clients' new sends into block ${block.number}`);
        // #validPrefix stays below the block: the loop rolls it back and mines it again.
        continue;
      }
      remines = 0;
      if (history[block.number - 1] === block && this.#validPrefix === block.number - 1) {
        this.#validPrefix = block.number;
      }
      if (live || block.hash === undefined || block.number === history.length) {
        await this.#checkHash(rpc, block);
      }
    }
  }

  /** Send a block's transactions and mine it; the node's state is unknown (#dirty) until it is mined. */
  async #mine(rpc: AnvilRpc, block: Pick<BlockRecord, 'number' | 'timestamp' | 'txs'>): Promise<void> {
    this.#dirty = true;
    for (const raw of block.txs) {
      try {
        await rpc.call('eth_sendRawTransaction', [raw]);
      } catch (error) {
        // Nodes in the same state reject the same transactions, so this stays lockstep.
        this.#log.warn({ block: block.number, err: error }, 'transaction rejected');
      }
    }
    await rpc.call('anvil_setNextBlockBaseFeePerGas', [BASE_FEE]);
    await rpc.call('evm_mine', [block.timestamp]);
    this.#dirty = false;
    this.#applied = block.number;
  }

  /**
   * With gossip, a client's send can land in this node's pool while a block the leading node mined
   * is fed to it: its block then has the send and the record does not. Such a block is not the
   * record's (its hash must not become the record's hash); its strangers go on to the next block.
   */
  async #keptToRecord(rpc: AnvilRpc, block: BlockRecord): Promise<boolean> {
    if (this.#passOn === undefined) return true;
    const mined = (await this.#block(rpc, block.number)).transactions;
    const recorded = block.txs.map(transactionHash);
    if (minedAsRecorded(mined, recorded)) return true;
    const strangers = mined.filter((hash) => !recorded.includes(hash));
    this.#passOn(await readTransactions(rpc, strangers));
    this.#log.info({ block: block.number, strangers }, 'mined sends the record does not have; mining the block again');
    return false;
  }

  /** Before mining recorded blocks again; with gossip, clients' transactions in the pool go on, not away. */
  async #clearPool(rpc: AnvilRpc): Promise<void> {
    if (this.#passOn === undefined) await rpc.call('anvil_dropAllTransactions');
    else this.#passOn(await takeReadyTransactions(rpc));
  }

  async #checkHash(rpc: AnvilRpc, block: BlockRecord): Promise<void> {
    const mined = await this.#blockHash(rpc, block.number);
    if (block.hash === undefined) {
      block.hash = mined;
    } else if (mined !== block.hash) {
      this.#dirty = true;
      throw new LockstepDivergenceError(
        `${this.name} mined ${mined} at height ${block.number}, the devnet has ${block.hash}`,
      );
    }
  }

  /** Find how much of the node's chain matches the history, after a sync failed midway. */
  async #probe(rpc: AnvilRpc, history: readonly BlockRecord[]): Promise<void> {
    await this.#clearPool(rpc);
    const height = Number(await rpc.call<Hex>('eth_blockNumber'));
    let match = Math.min(height, history.length);
    while (match > 0) {
      const recorded = history[match - 1]?.hash;
      if (recorded !== undefined && (await this.#blockHash(rpc, match)) === recorded) break;
      match -= 1;
    }
    this.#applied = height;
    this.#validPrefix = match;
    this.#dirty = false;
    this.#log.info({ height, match }, 'probed node after a failed sync');
  }

  async #blockHash(rpc: AnvilRpc, number: number): Promise<Hex> {
    return (await this.#block(rpc, number)).hash;
  }

  async #block(rpc: AnvilRpc, number: number): Promise<RpcBlock> {
    const block = await rpc.call<RpcBlock | null>('eth_getBlockByNumber', [`0x${number.toString(16)}`, false]);
    if (block === null) throw new Error(`${this.name} has no block ${number}`);
    return block;
  }
}
