/**
 * Which of a node's sockets carries its subscriptions, and the eth_subscribe / eth_unsubscribe
 * calls made on it. With a socket of their own (`upstreams[].streamSocket: own`), notifications
 * never wait behind a large answer on a call socket. While that socket is down, a call socket
 * stands in, and the subscriptions move back once it has been open again for MOVE_BACK_MS. With
 * `shared`, the first call socket to open carries them until it closes.
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { UpstreamConnection } from './connection.js';
import { UpstreamFailure } from './errors.js';
import { replyResult } from './reply.js';

/**
 * How long a socket of their own that came back must stay open before the subscriptions leave the
 * stand-in for it. A node that closes it at once after each connect (its reconnect delay starts
 * again at `reconnect.baseMs` after every open) would otherwise move them to and fro ten times a
 * second, each move a new eth_subscribe and a replay.
 */
export const MOVE_BACK_MS = 1000;

/**
 * How long, when a node comes back with a call socket open first, the subscriptions wait for their
 * own socket before the call socket stands in. Carried by the stand-in at once, they moved again a
 * moment later, when their socket opened: each stream made anew, with a gap that streams of
 * pending transactions cannot replay (the node's other sockets are asked to reconnect at once, so
 * their own is rarely more than a round trip behind).
 */
export const OWN_SOCKET_GRACE_MS = 500;

/** The node answered eth_subscribe with an error (a cap on subscriptions, a kind it does not serve). */
export class SubscribeRefused extends Error {}

/** A node's subscription, with the socket it lives on (it ends with that socket). */
export interface UpstreamSubscription {
  readonly id: string;
  readonly socket: UpstreamConnection;
}

export interface StreamCarrierEvents {
  /** a notification on the carrying socket */
  notification: [subscription: string, result: unknown];
  /** every subscription made so far is gone: its socket closed, or the subscriptions moved to another */
  lost: [];
  /** a socket can take subscriptions (again) */
  ready: [];
}

export class StreamCarrier extends EventEmitter<StreamCarrierEvents> {
  readonly #upstream: string;
  /** the socket of their own, when configured */
  readonly #own: UpstreamConnection | undefined;
  readonly #calls: readonly UpstreamConnection[];
  #current: UpstreamConnection | undefined;
  #moveBackTimer: NodeJS.Timeout | undefined;
  /** runs out when a call socket should stand in for their own, which has not opened (OWN_SOCKET_GRACE_MS) */
  #graceTimer: NodeJS.Timeout | undefined;
  /** the socket of their own has opened before: when it opens again, it came back */
  #ownOpenedBefore = false;

  constructor(upstream: string, own: UpstreamConnection | undefined, calls: readonly UpstreamConnection[]) {
    super();
    // Every subscribe made while the node's own socket is awaited waits on 'ready' (#untilCarried).
    this.setMaxListeners(0);
    this.#upstream = upstream;
    this.#own = own;
    this.#calls = calls;
    for (const socket of own === undefined ? calls : [own, ...calls]) {
      socket.on('open', () => this.#opened(socket));
      socket.on('close', () => this.#closed(socket));
      socket.on('notification', (message) => this.#onNotification(socket, message));
    }
  }

  get ready(): boolean {
    return this.#current?.isOpen === true;
  }

  /** Whether the socket of their own is the one carrying subscriptions (false with `shared`). */
  get onOwnSocket(): boolean {
    return this.#own !== undefined && this.#current === this.#own && this.#own.isOpen;
  }

  async subscribe(params: unknown[], timeoutMs: number): Promise<UpstreamSubscription> {
    // The node is back and its subscriptions' own socket awaited: wait for it (or the stand-in),
    // not fail a client's subscribe on a node that shows as usable.
    if (!this.ready && this.#graceTimer !== undefined) await this.#untilCarried(Math.min(timeoutMs, OWN_SOCKET_GRACE_MS + 100));
    const deadline = performance.now() + timeoutMs;
    for (let moves = 0; ; moves++) {
      const socket = this.#current;
      if (socket === undefined || !socket.isOpen) {
        throw new UpstreamFailure('EVMUX_NOT_CONNECTED', `${this.#upstream}: no subscription socket`, this.#upstream);
      }
      const reply = await socket.request('eth_subscribe', params, Math.max(1, deadline - performance.now()));
      if (reply.error) throw new SubscribeRefused(`${this.#upstream} refused eth_subscribe: ${reply.error.message}`);
      const id = replyResult(reply);
      if (typeof id !== 'string') {
        // A broken node's answer: refused as an error would be (its clients go to other nodes), and
        // what it may have made is undone as far as its id allows.
        if (id !== null && id !== undefined) void socket.request('eth_unsubscribe', [id], timeoutMs).catch(() => undefined);
        throw new SubscribeRefused(`${this.#upstream} answered eth_subscribe with ${JSON.stringify(id) ?? 'nothing'}, not a subscription id`);
      }
      if (socket === this.#current) return { id, socket };
      // The subscriptions moved while this one was being made (their own socket opened a moment
      // after a call socket at start): its notifications would be dropped. Made again where they are.
      void this.unsubscribe({ id, socket }, timeoutMs);
      if (moves === 1 || performance.now() >= deadline) {
        throw new UpstreamFailure('EVMUX_NOT_CONNECTED', `${this.#upstream}: subscriptions moved to another socket meanwhile`, this.#upstream);
      }
    }
  }

  /** On the socket the subscription lives on; nothing to do once that socket has closed. */
  async unsubscribe(subscription: UpstreamSubscription, timeoutMs: number): Promise<void> {
    if (!subscription.socket.isOpen) return;
    await subscription.socket.request('eth_unsubscribe', [subscription.id], timeoutMs).catch(() => undefined);
  }

  /**
   * Drop the socket the subscriptions ride on, to be made anew: behind a load balancer a new
   * connection may reach another backend than one that stopped sending heads.
   */
  reconnect(reason: string): void {
    this.#current?.terminate(reason);
  }

  close(): void {
    clearTimeout(this.#moveBackTimer);
    this.#moveBackTimer = undefined;
    clearTimeout(this.#graceTimer);
    this.#graceTimer = undefined;
  }

  #opened(socket: UpstreamConnection): void {
    const cameBack = socket === this.#own && this.#ownOpenedBefore;
    if (socket === this.#own) this.#ownOpenedBefore = true;
    if (!this.ready) {
      // The node is back (every socket had closed), a call socket first: their own is a moment behind.
      if (socket !== this.#own && this.#own !== undefined && this.#ownOpenedBefore) this.#awaitOwn();
      else this.#carry(socket);
      return;
    }
    if (socket !== this.#own || this.#current === this.#own) return;
    // Its first open, a moment after a call socket's at start, is no return: nothing to wait for.
    if (!cameBack) {
      this.#carry(socket);
      return;
    }
    clearTimeout(this.#moveBackTimer);
    this.#moveBackTimer = setTimeout(() => {
      this.#moveBackTimer = undefined;
      if (this.#own?.isOpen === true && this.#current !== this.#own) this.#carry(this.#own);
    }, MOVE_BACK_MS);
  }

  #untilCarried(waitMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.off('ready', done);
        resolve();
      };
      const timer = setTimeout(done, waitMs);
      this.on('ready', done);
    });
  }

  #awaitOwn(): void {
    if (this.#graceTimer !== undefined) return;
    this.#graceTimer = setTimeout(() => {
      this.#graceTimer = undefined;
      const standIn = this.#calls.find((candidate) => candidate.isOpen);
      if (!this.ready && standIn !== undefined) this.#carry(standIn);
    }, OWN_SOCKET_GRACE_MS);
  }

  #carry(socket: UpstreamConnection): void {
    clearTimeout(this.#graceTimer);
    this.#graceTimer = undefined;
    const moved = this.#current !== undefined;
    this.#current = socket;
    // Back from a stand-in: the subscriptions on it are dropped there and made again here.
    if (moved) this.emit('lost');
    this.emit('ready');
  }

  #closed(socket: UpstreamConnection): void {
    if (socket !== this.#current) return;
    this.#current = undefined;
    this.emit('lost');
    const next = this.#own?.isOpen === true ? this.#own : this.#calls.find((candidate) => candidate.isOpen);
    if (next !== undefined) this.#carry(next);
  }

  #onNotification(socket: UpstreamConnection, message: Record<string, unknown>): void {
    if (socket !== this.#current || message.method !== 'eth_subscription') return;
    const params = message.params as { subscription?: unknown; result?: unknown } | undefined;
    if (typeof params?.subscription !== 'string') return;
    this.emit('notification', params.subscription, params.result);
  }
}
