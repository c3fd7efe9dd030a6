import { pino, type Logger } from 'pino';
import type { Hex } from 'viem';
import { transactionHash } from '../router/transaction-hash.js';
import type { AnvilGenesis } from './anvil-process.js';
import { assertReorgDepth, nextTimestamp, type BlockRecord } from './chain-history.js';
import { TEST_ACCOUNT_KEY } from './dev-accounts.js';
import { LockstepNode } from './devnet-node.js';
import { PING_TOPIC } from './emitter-contract.js';
import { gossipOrder, type GossipedTransaction } from './pool-gossip.js';
import { TrafficSigner } from './traffic.js';

export interface DevnetOptions {
  /** @default 3 */
  nodes?: number;
  /** Mine a block every N ms on all nodes; 0 = only when mine() is called. @default 1000 */
  blockTimeMs?: number;
  /** Send a little traffic each block (value transfers + an event-emitting contract call). @default true */
  traffic?: boolean;
  /** @default 31337 */
  chainId?: number;
  /**
   * Pass on what clients send to one node (through evmux or straight to it) to every node, as a
   * network's gossip would: the node with the most transactions waiting in its pool mines each
   * block first, with them, and the others mine what it mined; what waits in the others' pools is
   * taken out and put in the block (by sender, then nonce). Off, a node mines only what the devnet
   * queued and a send to one node breaks the lockstep (tests that check which node took a send
   * rely on that). @default false
   */
  gossip?: boolean;
  /** pino logger (optional); the devnet logs through child loggers. */
  logger?: Logger;
}

export interface DevnetNode {
  readonly index: number;
  /** "node0", "node1", ... */
  readonly name: string;
  readonly port: number;
  readonly httpUrl: string;
  readonly wsUrl: string;
  readonly running: boolean;
  readonly held: boolean;
  /** Process id of the current anvil process; undefined before the first start. */
  readonly pid: number | undefined;
}

type Pending = { kind: 'raw'; raw: Hex } | { kind: 'emit'; value: bigint | undefined };

/**
 * Several anvil nodes that hold the same chain (same block hashes): same genesis, automine off,
 * the same signed transactions sent to every node in the same order, then `evm_mine` with the
 * same timestamp. Tests use it to get real nodes of one chain that can be killed, held back and
 * reorged; `npm start` uses it for the demo.
 *
 * Every operation that changes chains goes through one serial queue (`#serial`), so the block
 * timer, mine(), reorg() and the final step of restart()/release() never interleave.
 */
export class LockstepDevnet {
  readonly #nodes: LockstepNode[];
  readonly #genesis: AnvilGenesis;
  readonly #signer: TrafficSigner;
  readonly #emitter: `0x${string}`;
  readonly #traffic: boolean;
  readonly #gossip: boolean;
  readonly #blockTimeMs: number;
  readonly #log: Logger;
  readonly #history: BlockRecord[] = [];
  #pending: Pending[] = [];
  /** Clients' transactions the nodes passed on (gossip), for the next block. */
  #gossiped: GossipedTransaction[] = [];
  /** The last node that led a block with clients' transactions in its pool (gossip). */
  #lastLeader: LockstepNode | undefined;
  #queue: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #nextTickAt = 0;
  #closed = false;

  private constructor(genesis: AnvilGenesis, nodes: number, blockTimeMs: number, traffic: boolean, gossip: boolean, log: Logger) {
    this.#genesis = genesis;
    this.#log = log;
    const passOn = gossip ? (txs: readonly GossipedTransaction[]) => this.#gossiped.push(...txs) : undefined;
    this.#nodes = Array.from({ length: nodes }, (_, i) => new LockstepNode(i, log, passOn));
    this.#signer = new TrafficSigner(genesis.chainId);
    this.#emitter = this.#signer.emitterAddress();
    this.#traffic = traffic;
    this.#gossip = gossip;
    this.#blockTimeMs = blockTimeMs;
  }

  static async start(options: DevnetOptions = {}): Promise<LockstepDevnet> {
    const { nodes = 3, blockTimeMs = 1000, traffic = true, chainId = 31337, gossip = false, logger } = options;
    if (!Number.isInteger(nodes) || nodes < 1) {
      throw new RangeError(`nodes must be a positive integer, got ${nodes}`);
    }
    if (!Number.isFinite(blockTimeMs) || blockTimeMs < 0) {
      throw new RangeError(`blockTimeMs must be >= 0, got ${blockTimeMs}`);
    }
    const log = (logger ?? pino({ enabled: false })).child({ component: 'devnet' });
    const genesis = { chainId, timestamp: Math.floor(Date.now() / 1000) };
    const devnet = new LockstepDevnet(genesis, nodes, blockTimeMs, traffic, gossip, log);
    try {
      const started = await Promise.allSettled(devnet.#nodes.map((node) => node.start(genesis)));
      const failed = started.find((result) => result.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
      await devnet.#serial(() => devnet.#mineBlocks(1, true));
    } catch (error) {
      await devnet.close();
      throw error;
    }
    log.info({ nodes: devnet.#nodes.map((n) => n.httpUrl), chainId, blockTimeMs }, 'lockstep devnet started');
    devnet.#scheduleTick();
    return devnet;
  }

  get nodes(): readonly DevnetNode[] {
    return this.#nodes;
  }

  get chainId(): number {
    return this.#genesis.chainId;
  }

  /** Genesis timestamp (seconds) shared by all nodes. */
  get genesisTimestamp(): number {
    return this.#genesis.timestamp;
  }

  /** Height of the devnet's canonical chain (what every active node has after an operation). */
  get blockNumber(): number {
    return this.#history.length;
  }

  /** Address of the deployed emitter contract (deployed in block 1 during start). */
  get emitterAddress(): `0x${string}` {
    return this.#emitter;
  }

  /** topic0 of `Ping(address indexed from, uint256 value)`, the event the emitter emits. */
  get emitterTopic(): `0x${string}` {
    return PING_TOPIC;
  }

  /** Private key of a funded dev account for tests; the devnet never sends from it. */
  get testAccountKey(): `0x${string}` {
    return TEST_ACCOUNT_KEY;
  }

  /** Mine `count` blocks now on every running, non-held node, with identical txs and timestamps. */
  mine(count = 1): Promise<void> {
    if (!Number.isInteger(count) || count < 1) {
      return Promise.reject(new RangeError(`count must be a positive integer, got ${count}`));
    }
    return this.#serial(() => this.#mineBlocks(count, false));
  }

  /** Queue a signed raw tx (signed by the caller) for the next block; it goes to all nodes. */
  queueRawTransaction(raw: `0x${string}`): void {
    this.#pending.push({ kind: 'raw', raw });
  }

  /** Queue an emitter call (one Ping event) for the next block; value defaults to a fresh number. */
  queueEmit(value?: bigint): void {
    this.#pending.push({ kind: 'emit', value });
  }

  /** SIGKILL the anvil process of node i; its port stays assigned to it for restart(). */
  kill(i: number): Promise<void> {
    const node = this.#node(i);
    return this.#serial(() => node.kill());
  }

  /** Fresh anvil on the same port, replay the whole history (same hashes), rejoin lockstep. */
  async restart(i: number): Promise<void> {
    const node = this.#node(i);
    await this.#serial(async () => {
      await node.kill();
      node.joining = true;
      try {
        await node.respawn(this.#genesis);
      } catch (error) {
        node.joining = false;
        throw error;
      }
    });
    if (node.held) node.joining = false;
    else await this.#rejoin(node);
  }

  /** Stop feeding node i: it keeps its chain but gets no new transactions or blocks. */
  hold(i: number): void {
    this.#node(i).held = true;
  }

  /** Catch node i up (rolling back blocks a reorg replaced meanwhile) and rejoin lockstep. */
  async release(i: number): Promise<void> {
    const node = this.#node(i);
    if (!node.held) return;
    node.joining = true;
    node.held = false;
    if (node.running) await this.#rejoin(node);
    else node.joining = false;
  }

  /**
   * Replace the last `depth` blocks on every active node with a different branch of `depth + 1`
   * blocks (later timestamps, freshly signed traffic), identical on every node. Transactions the
   * caller queued into the replaced blocks are re-included in the first block of the new branch.
   */
  reorg(depth: number): Promise<void> {
    return this.#serial(async () => {
      assertReorgDepth(depth, this.#history.length);
      const forkPoint = this.#history.length - depth;
      const orphaned = this.#history.splice(forkPoint);
      this.#signer.rewind(this.#history[forkPoint - 1]?.trafficNonceAfter ?? 0);
      for (const node of this.#nodes) node.invalidateFrom(forkPoint);
      const returned: Pending[] = orphaned.flatMap((b) => b.callerTxs.map((raw) => ({ kind: 'raw' as const, raw })));
      this.#pending = [...returned, ...this.#pending];
      const replaced = orphaned[0]?.timestamp ?? 0;
      for (let k = 0; k <= depth; k++) {
        this.#history.push(await this.#buildBlock(false, k === 0 ? replaced + 1 : 0));
      }
      this.#log.info({ depth, forkPoint, head: this.#history.length }, 'reorg');
      await this.#syncActive();
    });
  }

  /** Current head (number, hash) of node i via eth_getBlockByNumber('latest'). */
  head(i: number): Promise<{ number: bigint; hash: `0x${string}` }> {
    return this.#node(i).head();
  }

  /** Stop the block timer and kill every anvil process; idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    // Kill first: an operation in flight then fails fast instead of being waited for.
    await Promise.all(this.#nodes.map((node) => node.kill()));
    await this.#queue;
    // A restart() that was spawning when close() began has finished by now: kill its process too.
    await Promise.all(this.#nodes.map((node) => node.kill()));
    this.#log.info('lockstep devnet closed');
  }

  #node(i: number): LockstepNode {
    const node = this.#nodes[i];
    if (node === undefined || !Number.isInteger(i)) {
      throw new RangeError(`node index ${i} out of range 0..${this.#nodes.length - 1}`);
    }
    return node;
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(() => {
      if (this.#closed) throw new Error('lockstep devnet is closed');
      return fn();
    });
    this.#queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  async #mineBlocks(count: number, deploy: boolean): Promise<void> {
    for (let k = 0; k < count; k++) {
      this.#history.push(await this.#buildBlock(deploy && k === 0, 0));
      await this.#syncActive();
    }
  }

  async #buildBlock(deploy: boolean, minTimestamp: number): Promise<BlockRecord> {
    const parent = this.#history.at(-1)?.timestamp ?? this.#genesis.timestamp;
    const txs: Hex[] = [];
    const callerTxs: Hex[] = [];
    if (deploy) txs.push(await this.#signer.deployEmitter());
    for (const item of this.#pending.splice(0)) {
      if (item.kind === 'raw') {
        txs.push(item.raw);
        callerTxs.push(item.raw);
      } else {
        txs.push(await this.#signer.emit(this.#emitter, item.value));
      }
    }
    const leader = this.#gossip ? await this.#gatherPools() : undefined;
    // Caller transactions, like any in the record, are re-included if a reorg orphans the block.
    const passed = this.#takeGossiped(callerTxs);
    txs.push(...passed);
    callerTxs.push(...passed);
    if (this.#traffic) txs.push(await this.#signer.transfer(), await this.#signer.emit(this.#emitter));
    const draft: BlockRecord = {
      number: this.#history.length + 1,
      timestamp: nextTimestamp(parent, Date.now() / 1000, minTimestamp),
      txs,
      callerTxs,
      trafficNonceAfter: this.#signer.nonce,
    };
    return leader === undefined ? draft : this.#leadBlock(leader, draft);
  }

  /**
   * Gossip: the active node with the most transactions ready in its pool mines the block first,
   * with them, and the others then mine what it did. The other nodes' ready transactions are taken
   * out of their pools for the draft (usually there are none: evmux sends a client's transactions
   * to one node for a while). With none anywhere, the last node that had some leads, as a client's
   * next send is likely to land there. Returns the leader, or none when no node answers.
   */
  async #gatherPools(): Promise<LockstepNode | undefined> {
    const active = this.#nodes.filter((node) => node.active);
    const counts = await Promise.all(active.map((node) => node.readyCount().catch(() => -1)));
    const answered = active.filter((_, k) => (counts[k] ?? -1) >= 0);
    const most = Math.max(...counts);
    if (most > 0) this.#lastLeader = active[counts.indexOf(most)];
    const leader = this.#lastLeader !== undefined && answered.includes(this.#lastLeader) ? this.#lastLeader : answered[0];
    const others = active.filter((node, k) => node !== leader && (counts[k] ?? 0) > 0);
    const results = await Promise.allSettled(others.map((node) => node.passOnPool()));
    results.forEach((result, k) => {
      if (result.status === 'rejected') this.#log.warn({ node: others[k]?.name, err: result.reason }, 'could not take the pool');
    });
    return leader;
  }

  /** The block as the leading node mined it; as drafted if that node failed (it is probed and caught up then). */
  async #leadBlock(leader: LockstepNode, draft: BlockRecord): Promise<BlockRecord> {
    try {
      const mined = await leader.lead(this.#history, draft);
      const callerTxs = new Set(draft.callerTxs);
      const own = new Set(draft.txs.filter((raw) => !callerTxs.has(raw)));
      return { ...draft, txs: mined.txs, callerTxs: mined.txs.filter((raw) => !own.has(raw)), hash: mined.hash };
    } catch (error) {
      this.#log.warn({ node: leader.name, err: error }, 'leading node failed to mine; the block is mined as drafted');
      return draft;
    }
  }

  /**
   * Clients' transactions the nodes passed on (gossip), once each, but not the ones `queued`
   * already holds (a test queues what it sends, as without gossip).
   */
  #takeGossiped(queued: readonly Hex[]): Hex[] {
    const skip = new Set(queued.map(transactionHash));
    return gossipOrder(this.#gossiped.splice(0))
      .filter((tx) => !skip.has(tx.hash))
      .map((tx) => tx.raw);
  }

  /** Feed the history to every active node; a node that died meanwhile is only logged. */
  async #syncActive(): Promise<void> {
    const targets = this.#nodes.filter((node) => node.active);
    const results = await Promise.allSettled(targets.map((node) => node.sync(this.#history, true)));
    let firstError: unknown;
    results.forEach((result, k) => {
      const node = targets[k];
      if (result.status === 'fulfilled' || node === undefined) return;
      if (!node.running) {
        this.#log.warn({ node: node.name }, 'node died while mining');
        return;
      }
      this.#log.error({ node: node.name, err: result.reason }, 'node failed to mine');
      firstError ??= result.reason;
    });
    if (firstError !== undefined) throw firstError;
  }

  /** Bulk catch-up outside the queue (the chain keeps growing), then the last steps inside it. */
  async #rejoin(node: LockstepNode): Promise<void> {
    try {
      await node.sync(this.#history, false);
      await this.#serial(() => node.sync(this.#history, false));
      this.#log.info({ node: node.name, head: this.#history.length }, 'node rejoined lockstep');
    } finally {
      // Even after a failure: the next lockstep sync probes the node and repairs it.
      node.joining = false;
    }
  }

  #scheduleTick(): void {
    if (this.#blockTimeMs <= 0 || this.#closed) return;
    const now = Date.now();
    // Fixed cadence; after a slow block (restart, reorg) start again from now instead of bursting.
    this.#nextTickAt =
      this.#nextTickAt === 0 ? now + this.#blockTimeMs : Math.max(this.#nextTickAt + this.#blockTimeMs, now);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#serial(() => this.#mineBlocks(1, false))
        .catch((error: unknown) => {
          if (!this.#closed) this.#log.warn({ err: error }, 'timed block failed');
        })
        .then(() => this.#scheduleTick());
    }, this.#nextTickAt - now);
    this.#timer.unref();
  }
}
