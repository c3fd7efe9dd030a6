/**
 * One client WebSocket connection: runs its frames through the dispatcher, holds its
 * subscriptions, and disconnects it when its send buffer passes the cap (never skips it silently).
 */
import type { DispatchContext, Dispatcher, SubscriptionHost } from '../jsonrpc/dispatcher.js';
import { sessionLabel, type Logger } from '../log.js';
import type { Subscriber } from '../subs/group.js';
import type { SubscriptionManager } from '../subs/subscription-manager.js';
import type { DisconnectReason, Telemetry } from '../telemetry.js';
import type { ClientSocket } from './front-end.js';
import type { HeldCalls } from '../jsonrpc/held-calls.js';

export interface SessionData {
  ip: string;
  sessionKey: string;
}

export interface SessionDeps {
  dispatcher: Dispatcher;
  subscriptions: SubscriptionManager;
  telemetry: Telemetry;
  logger: Logger;
  maxSendBufferBytes: number;
}

/** Sessions made by this process: each one's clientId. */
let sessionsMade = 0;

export class ClientSession implements DispatchContext, SubscriptionHost, Subscriber {
  readonly transport = 'ws' as const;
  readonly sessionKey: string;
  /** this connection: one client, whatever its session key */
  readonly clientId: string;
  readonly ip: string;
  inFlight = 0;
  held: HeldCalls | undefined = undefined;
  readonly #socket: ClientSocket<SessionData>;
  readonly #deps: SessionDeps;
  #logger: Logger | undefined;
  #closeReason: DisconnectReason = 'client';
  /**
   * Bytes the send buffer may hold over the cap: the largest frame sent since the buffer was last
   * within it. An answer larger than the cap (a wide eth_getLogs, a batch of blocks) goes out whole
   * and the client has until it has read it; more queued behind it than the cap is slow reading.
   */
  #allowance = 0;
  /** frames received, and their count when a shutdown last asked (settled) */
  #frames = 0;
  #framesAsked = -1;

  constructor(socket: ClientSocket<SessionData>, deps: SessionDeps) {
    this.clientId = `ws:${++sessionsMade}`;
    this.#socket = socket;
    this.#deps = deps;
    this.sessionKey = socket.data.sessionKey;
    this.ip = socket.data.ip;
  }

  get clientIp(): string {
    return this.ip;
  }

  get subscriptions(): SubscriptionHost {
    return this;
  }

  get socket(): ClientSocket<SessionData> {
    return this.#socket;
  }

  /** Created on first use: most sessions never log anything, and 10k idle sessions should stay small. */
  get logger(): Logger {
    this.#logger ??= this.#deps.logger.child({ client: this.ip, session: sessionLabel(this.sessionKey) });
    return this.#logger;
  }

  get closed(): boolean {
    return this.#socket.closed;
  }

  onMessage(text: string, ascii: boolean): void {
    this.#frames++;
    try {
      this.#deps.dispatcher.dispatch(text, this, ascii);
    } catch (error) {
      this.logger.error({ err: error }, 'dispatch failed');
    }
  }

  /** A frame's answer from the dispatcher; subscriptions start once it is queued ahead of their notifications. */
  answer(response: Buffer | undefined, after: ReadonlyArray<() => void>): void {
    if (response !== undefined) this.send(response);
    // Indexed: a for-of over the frozen empty NO_AFTER goes through the iterator builtin on every answer.
    for (let i = 0; i < after.length; i++) after[i]!();
  }

  /** Direct send (responses, replays). Returns false if the client is gone or was cut off. */
  send(text: string | Buffer): boolean {
    if (!this.#socket.send(text)) return false;
    if (text.length > this.#allowance) this.#allowance = text.length;
    return this.checkBackpressure();
  }

  /**
   * After any send or publish that reached this client: enforce the send buffer cap, plus the
   * allowance of one frame larger than the cap while it is being read.
   */
  checkBackpressure(): boolean {
    const buffered = this.#socket.bufferedAmount();
    const cap = this.#deps.maxSendBufferBytes;
    if (buffered <= cap) {
      this.#allowance = 0;
      return true;
    }
    if (buffered <= cap + this.#allowance) return true;
    this.logger.warn({ buffered, cap, largestFrame: this.#allowance }, 'disconnecting slow consumer');
    this.disconnect(1013, `send buffer over ${cap} bytes: client too slow`, 'slow_consumer');
    return false;
  }

  /**
   * For a shutdown, asked every tick: no call of its in flight, nothing left to write, and no frame
   * received since it was last asked. Closed at once after an answer, a call it sent meanwhile
   * (one it sends on each answer) was still on its way, never read and never answered.
   */
  settled(): boolean {
    const quiet = this.#frames === this.#framesAsked;
    this.#framesAsked = this.#frames;
    return quiet && this.inFlight === 0 && this.#socket.bufferedAmount() === 0;
  }

  disconnect(code: number, reason: string, why: DisconnectReason): void {
    if (this.#socket.closed) return;
    this.#closeReason = why;
    this.#socket.close(code, reason);
    // uWS calls the close handler synchronously from end(); onClose does the bookkeeping.
  }

  onClose(): DisconnectReason {
    this.#deps.subscriptions.releaseSession(this);
    return this.#closeReason;
  }

  joinTopic(topic: string): void {
    this.#socket.subscribe(topic);
  }

  leaveTopic(topic: string): void {
    this.#socket.unsubscribe(topic);
  }

  subscribe(params: unknown): Promise<{ id: string; start: () => void }> {
    return this.#deps.subscriptions.subscribe(this, params);
  }

  unsubscribe(id: string): boolean {
    return this.#deps.subscriptions.unsubscribe(this, id);
  }
}
