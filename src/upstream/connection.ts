/**
 * One persistent WebSocket to an upstream node: request/response with evmux's own ids, a ping/pong
 * heartbeat, and reconnection forever with exponential backoff and full jitter. Pending requests
 * fail at once when the socket dies so callers can retry elsewhere without waiting for a timeout.
 * A socket that opens carries traffic only once the node it reached has shown its identity
 * (`identity`: the pool's chain, chain-guard.ts); until then it is not open to its users.
 */
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { MAX_SETTING } from '../config/schema.js';
import { hiddenPartsOf, type Logger } from '../log.js';
import { COALESCE_WINDOW_MS } from '../runtime/coalesce-window.js';
import { afterReads } from '../runtime/after-reads.js';
import { WarningThrottle } from '../runtime/warning-throttle.js';
import { UpstreamFailure } from './errors.js';
import { readRefusal, type HandshakeRefusal } from './handshake-refusal.js';
import { LateSubscribes } from './late-subscribes.js';
import { readFrames, type FrameReader } from './frame-reader.js';
import { leadingId, trailingId } from './oversized-answer-id.js';
import { PendingCalls } from './pending-calls.js';
import { ReceiveMeter, type ReceiveMark } from './receive-meter.js';
import { RequestsAhead, type AheadMark } from './requests-ahead.js';
import { parseUpstreamFrame, rejectLater, replyFromObject, replyResult, requestVia, type CallSender, type ReplySink, type UpstreamReply } from './reply.js';
import { requestFrame } from './request-frame.js';
import { MESSAGE_TOO_BIG, SMALLEST_REFUSABLE_BYTES, type FrameLimit } from './frame-limit.js';
import { writeFrame } from './frame-writer.js';
import { Heartbeat } from './heartbeat.js';
import type { AskSocket, SocketVerdict } from './chain-guard.js';
import { OWN_CALLS } from './oversized-clients.js';
import { CLOSED_AT_ONCE, ReconnectStreak, type CloseCause } from './reconnect-streak.js';

export interface ConnectionOptions {
  upstream: string;
  url: string;
  /** headers sent with the handshake (credentials for a node behind an authenticating proxy) */
  headers?: Readonly<Record<string, string>>;
  heartbeat: { intervalMs: number; timeoutMs: number };
  reconnect: { baseMs: number; maxMs: number };
  /** largest message taken from the node; a larger one closes the socket (ws cannot skip it unread) */
  maxAnswerBytes: number;
  /** request bytes sent and not yet read by the node past which the socket has no room for more calls (hasRoom) */
  maxBytesInFlight: number;
  /** the request frames the node takes, shared by its sockets (frame-limit.ts) */
  frameLimit: FrameLimit;
  /**
   * What the node a socket reached must show before the socket carries traffic: `check` answers
   * why it is refused, or that it passed (with what to `release` once the socket has closed), and
   * throws when it cannot tell; each of its requests times out after `timeoutMs`.
   */
  identity?: { check(ask: AskSocket): Promise<SocketVerdict>; timeoutMs: number };
  logger: Logger;
  /**
   * Requests made closer together than this (ms) are taken for a burst (see coalesce-window.ts).
   * @default COALESCE_WINDOW_MS
   */
  coalesceWindowMs?: number;
}

/** The close code of a socket that ended without a close frame (cut, or terminated by evmux). */
const ABNORMAL_CLOSURE = 1006;
/** The unsubscribe of a late subscription: its answer is of no interest. */
const LATE_UNSUBSCRIBE_TIMEOUT_MS = 10_000;
const IGNORED: ReplySink = { resolve: () => undefined, reject: () => undefined };

interface Pending {
  id: number;
  deadline: number;
  /** the socket's count of answered calls when this one was sent */
  answeredBefore: number;
  method: string;
  timeoutMs: number;
  sink: ReplySink;
  /** its request frame's size */
  bytes: number;
}

/** A point in a socket's traffic, for busySince: what was arriving, and which requests were ahead. */
export interface ProgressMark {
  readonly received: ReceiveMark;
  readonly ahead: AheadMark | undefined;
}

/**
 * Methods whose answer is a few bytes: one over maxAnswerBytes (at least 64 KiB) is a broken node,
 * not a call that asked for much.
 */
const SMALL_ANSWERS: ReadonlySet<string> = new Set(['eth_blockNumber', 'eth_chainId', 'net_version', 'eth_subscribe', 'eth_unsubscribe']);

export interface ConnectionEvents {
  open: [];
  /** `own`: evmux closed it for a reason of its own (a message over maxAnswerBytes no call asked for, a request the node refused with 1009); the node is not at fault */
  close: [own: boolean];
  /** a parsed frame that is not a response: subscription notifications */
  notification: [message: Record<string, unknown>];
  /** answers or pongs brought the request bytes in flight back under maxBytesInFlight */
  room: [];
  /** a connect attempt failed, or an open socket closed for a reason of the node's: why */
  failed: [reason: string];
  /** the node a socket reached failed its identity check (another chain): why; the socket closes */
  refused: [reason: string];
  /** a call was answered over maxAnswerBytes (the answer skipped): whose (CallContext.clientId, or OWN_CALLS) */
  oversized: [client: string];
}

export class UpstreamConnection extends EventEmitter<ConnectionEvents> implements CallSender {
  readonly #options: ConnectionOptions;
  #socket: WebSocket | undefined;
  #open = false;
  #closed = false;
  #nextId = 1;
  readonly #pending = new PendingCalls<Pending>();
  /** eth_subscribe calls that timed out: their late answers are unsubscribed (late-subscribes.ts) */
  readonly #lateSubscribes = new LateSubscribes();
  /** calls the node has answered on this socket: one that times out after others were answered is slow, the node alive */
  #answered = 0;
  /** for a node's errors under id null, which a client's requests can repeat at its own rate */
  readonly #warnings: WarningThrottle;
  /** when to connect again, and how failed attempts are logged */
  readonly #streak: ReconnectStreak;
  /**
   * Frames waiting for the end of this poll, and the socket they were made for: the first
   * #outgoingCount slots of one reused array (emptying an array by setting its length goes through
   * V8's runtime, ~300 instructions).
   */
  readonly #outgoing: Array<Buffer | undefined> = [];
  #outgoingCount = 0;
  #outgoingSocket: WebSocket | undefined;
  readonly #coalesceWindowMs: number;
  /** when the last request was made (sent or queued), on the performance.now() clock */
  #lastRequestAt = -Infinity;
  /** the last socket was closed for a reason of evmux's own: its reopening is no news */
  #quietReopen = false;
  /** the open socket's heartbeat */
  #heartbeat: Heartbeat<ProgressMark> | undefined;
  /** the socket terminate() was called on, until it has closed, and why */
  #terminated: { socket: WebSocket; reason: string } | undefined;
  /** whether the node is in the middle of sending a message: a pong or a probe's answer waits behind it */
  readonly #received = new ReceiveMeter();
  /** whether the node is answering requests sent before a ping or a probe: they wait behind those */
  readonly #ahead = new RequestsAhead();
  /** the request bytes in flight reached maxBytesInFlight: 'room' is due when they fall back under it */
  #full = false;
  /** a ping is due once the frames waiting for this poll's flush are written (#ping) */
  #pingAfterFlush = false;
  /**
   * One timer for all pending calls, armed for the earliest deadline, instead of a timer per call:
   * calls usually finish long before their deadline, and when the timer fires for one that did,
   * it re-arms for the earliest call still pending.
   */
  #deadlineTimer: NodeJS.Timeout | undefined;
  #deadlineAt = Infinity;

  constructor(options: ConnectionOptions) {
    super();
    this.#options = options;
    this.#coalesceWindowMs = options.coalesceWindowMs ?? COALESCE_WINDOW_MS;
    this.#warnings = new WarningThrottle(options.logger);
    this.#streak = new ReconnectStreak(options.reconnect, options.logger, () => this.#connect());
  }

  get isOpen(): boolean {
    return this.#open;
  }

  get inFlight(): number {
    return this.#pending.size;
  }

  /**
   * The request bytes in flight are under maxBytesInFlight. Past it, behind a link slower than
   * evmux writes, one client's large requests piled up ahead of every other call, ping and probe.
   */
  get hasRoom(): boolean {
    return this.#pending.bytes < this.#options.maxBytesInFlight;
  }

  /** The request bytes of the calls sent on this socket that the node may not have read yet (PendingCalls.bytes). */
  get bytesInFlight(): number {
    return this.#pending.bytes;
  }

  /** Where this socket's traffic stands now, for busySince; release it with releaseMark. */
  progressMark(): ProgressMark {
    return { received: this.#received.mark(), ahead: this.#ahead.mark(this.#nextId, this.#pending.bytes) };
  }

  /**
   * Whether the node has been busy with this socket since `mark` (or since busySince last asked):
   * in the middle of sending a message (receive-meter.ts), or answering the requests sent before
   * the mark (requests-ahead.ts). What was sent after the mark waits behind either.
   */
  busySince(mark: ProgressMark): boolean {
    return this.#received.arrivingSince(mark.received) || this.#ahead.progressed(mark.ahead);
  }

  releaseMark(mark: ProgressMark): void {
    this.#ahead.release(mark.ahead);
  }

  start(): void {
    this.#connect();
  }

  /** The socket is open to its users: calls, probes and subscriptions. */
  #becomeOpen(): void {
    this.#open = true;
    const noNews = this.#streak.opened() || this.#quietReopen;
    this.#quietReopen = false;
    this.#options.logger[noNews ? 'debug' : 'info']('upstream socket open');
    this.emit('open');
  }

  /**
   * Ask the node `socket` reached who it is (ConnectionOptions.identity): its verdict, a refusal
   * announced as 'refused'. A node that cannot tell is refused as well, and tried again after the
   * backoff.
   */
  async #identify(socket: WebSocket, identity: NonNullable<ConnectionOptions['identity']>): Promise<SocketVerdict> {
    const ask: AskSocket = (method, params) =>
      new Promise((resolve, reject) => this.#sendOn(socket, method, params, identity.timeoutMs, { resolve, reject }));
    try {
      const verdict = await identity.check(ask);
      if (verdict.refusal !== undefined && this.#socket === socket) this.emit('refused', verdict.refusal);
      return verdict;
    } catch (error) {
      return { refusal: `identity check failed: ${(error as Error).message}` };
    }
  }

  /** Send one call; resolves with the node's reply (which may be a JSON-RPC error). */
  request(method: string, params: unknown, timeoutMs: number): Promise<UpstreamReply> {
    return requestVia(this, method, params, timeoutMs);
  }

  /**
   * Send one call; the node's reply (which may be a JSON-RPC error) or an UpstreamFailure goes to
   * `sink`, never synchronously from this method.
   */
  send(method: string, params: unknown, timeoutMs: number, sink: ReplySink): void {
    const socket = this.#socket;
    if (!this.#open || socket === undefined) {
      rejectLater(sink, this.#failure('EVMUX_NOT_CONNECTED', 'not connected'));
      return;
    }
    this.#sendOn(socket, method, params, timeoutMs, sink);
  }

  /** send() on `socket`, open to its users or still showing its identity. */
  #sendOn(socket: WebSocket, method: string, params: unknown, timeoutMs: number, sink: ReplySink): void {
    const id = this.#nextId;
    const now = performance.now();
    const deadline = now + timeoutMs;
    const frame = requestFrame(id, method, params ?? []);
    const refused = this.#options.frameLimit.refuses(frame.length, now);
    if (refused !== undefined) {
      const why = `the ${method} request is ${frame.length} bytes, and the node closed its socket on one of ${refused} (1009 message too big) lately: it takes smaller requests`;
      rejectLater(sink, this.#failure('EVMUX_REQUEST_TOO_LARGE', why, false));
      return;
    }
    // Taken only by a request written: a ping carries the last id written, for #delivered.
    this.#nextId = id + 1;
    this.#pending.add({ id, deadline, answeredBefore: this.#answered, method, timeoutMs, sink, bytes: frame.length });
    if (deadline < this.#deadlineAt) this.#armDeadline(deadline);
    this.#queue(socket, frame, now);
    if (!this.#full && !this.hasRoom) {
      this.#full = true;
      // Answers may be long in coming (a slow eth_call with a large body): a pong says sooner that the node has read it all.
      if (this.#outgoingCount === 0) this.#ping(socket);
      else this.#pingAfterFlush = true;
    }
  }

  /** A ping, carrying the id of the last call written before it (#delivered, when its pong comes back). */
  #ping(socket: WebSocket): void {
    if (socket.readyState === WebSocket.OPEN) socket.ping(String(this.#nextId - 1 - this.#outgoingCount));
  }

  /** The node has read every request up to call `id` (one it was sent): their bytes no longer count against the room. */
  #delivered(id: number): void {
    // Only an id it was sent: a node's garbage id would run the count off.
    if (!Number.isSafeInteger(id) || id >= this.#nextId) return;
    this.#pending.delivered(id);
    this.#noteRoom();
  }

  close(): void {
    this.#closed = true;
    this.#streak.stop();
    this.#stopHeartbeat();
    this.#disarmDeadline();
    this.#socket?.terminate();
    this.#socket = undefined;
    this.#markClosed('connection closed');
  }

  /**
   * Waiting out a reconnect backoff: connect now. Another socket to the same node has just opened,
   * so the node is back, and its sockets come back together instead of each after its own backoff.
   */
  reconnectNow(): void {
    if (!this.#closed) this.#streak.hurry();
  }

  /**
   * Drop the socket now (heartbeat loss, garbage); it reconnects with backoff. `quiet`: it is
   * closing already, and its close says why (a debug line, not a warning).
   */
  terminate(reason: string, quiet = false): void {
    const socket = this.#socket;
    // Once per socket: every frame sent while it closes asks again (10,000 re-subscriptions, 10,000 warnings).
    if (socket === undefined || this.#terminated?.socket === socket) return;
    this.#terminated = { socket, reason };
    this.#options.logger[quiet ? 'debug' : 'warn']({ reason }, 'terminating upstream socket');
    socket.terminate();
  }

  #connect(): void {
    if (this.#closed) return;
    // A ping interval's worth more than a pong's wait, at most another pong's wait: with pings as
    // good as off (intervalMs at its largest) a connect into a front that never answered waited
    // for days. (A timer past MAX_SETTING fires at once.)
    const { timeoutMs, intervalMs } = this.#options.heartbeat;
    const handshakeMs = Math.min(MAX_SETTING, timeoutMs + Math.min(intervalMs, timeoutMs));
    const socket = new WebSocket(this.#options.url, {
      perMessageDeflate: false,
      headers: { ...this.#options.headers },
      maxPayload: this.#options.maxAnswerBytes,
      // Nodes are trusted peers; validating every byte of every block in JS costs more than the proxying.
      skipUTF8Validation: true,
      // maxPayload bounds a message. ws's own caps on its pieces (16,384 fragments, 262,144 chunks
      // read) do not fit a node's writes: geth writes in 1 KB frames, so any answer over 16 MB
      // closed the socket, on every node it was tried on.
      maxFragments: 0,
      maxBufferedChunks: 0,
      handshakeTimeout: handshakeMs,
    });
    this.#socket = socket;
    let opened = false;
    // ws's handshakeTimeout is the socket's idle timeout: a front that trickles its answer a byte at
    // a time reset it for good, and the node never came back. This bounds the whole handshake.
    let stuck: string | undefined;
    const handshakeDeadline = setTimeout(() => {
      stuck = `handshake not completed within ${handshakeMs} ms (heartbeat.timeoutMs + intervalMs, at most 2 × timeoutMs)`;
      socket.terminate();
    }, handshakeMs);
    socket.once('close', () => clearTimeout(handshakeDeadline));
    /** set when the socket is closed for a message over maxAnswerBytes: the id it carried, if known */
    let oversized: { id: number | undefined } | undefined;
    /** reads the node's frames before ws does (frame-reader.ts), from the socket's opening on */
    let frames: FrameReader | undefined;
    /** what the node answered the handshake with, when it was not 101 */
    let refusal: HandshakeRefusal | undefined;
    socket.on('unexpected-response', (_request, response) => {
      void readRefusal(response, hiddenPartsOf(this.#options.url, this.#options.headers)).then((read) => {
        refusal = read;
        this.#streak.retryAfter(read.retryAfterMs);
        // Still connecting: ws then fails the attempt with 'error' (logged with the refusal) and 'close'.
        socket.terminate();
      });
    });
    /** why the node this socket reached failed its identity check */
    let misidentified: string | undefined;
    /** what to let go of once this socket, having passed its identity check, closes */
    let release: (() => void) | undefined;
    socket.on('open', () => {
      opened = true;
      clearTimeout(handshakeDeadline);
      // Skipped, the socket open: an answer to a call that may ask for much. Anything else closes it.
      const judge = (id: number | undefined): void => {
        if (this.#socket !== socket || (this.#open && this.#skippedAnswer(id))) return;
        oversized = { id };
        socket.terminate();
      };
      /** the message being skipped showed its id first, and was judged by it */
      let judged = false;
      frames = readFrames(socket, this.#options.maxAnswerBytes, {
        message: (text) => this.#onFrame(text),
        started: (head) => {
          const id = leadingId(head);
          judged = id !== undefined;
          if (judged) judge(id);
        },
        skipped: (tail) => {
          if (!judged) judge(trailingId(tail));
          judged = false;
        },
      });
      this.#received.follow(() => frames!.midMessage);
      // From the start: a node that hangs while it is asked who it is is found out as any other.
      this.#heartbeat = this.#startHeartbeat(socket);
      if (this.#options.identity === undefined) {
        this.#becomeOpen();
        return;
      }
      void this.#identify(socket, this.#options.identity).then((verdict) => {
        if (this.#socket !== socket) {
          verdict.release?.();
          return;
        }
        if (verdict.refusal === undefined) {
          release = verdict.release;
          this.#becomeOpen();
          return;
        }
        misidentified = verdict.refusal;
        socket.terminate();
      });
    });
    socket.on('upgrade', (response) => this.#received.attach(response.socket));
    // A binary answer is read as the text it carries: a node may answer in the opcode it was asked
    // in, or in binary always.
    socket.on('message', (data) => {
      if (frames!.truncated()) return;
      this.#onFrame(Buffer.isBuffer(data) ? data : Buffer.concat(data as Buffer[]));
    });
    socket.on('pong', (data) => {
      this.#heartbeat?.pong();
      // A ping carries the last call id written before it, and a pong echoes it: the node has read that far.
      if (data.length > 0 && data.length < 16) this.#delivered(Number(data.toString('latin1')));
    });
    socket.on('error', (error: Error & { code?: string }) => {
      if (!opened && !this.#closed) this.#connectFailed(refusal?.reason ?? stuck ?? error.message, refusal?.retryAfterMs);
      else this.#options.logger.debug({ err: error.message }, 'upstream socket error');
    });
    socket.on('close', (code, reason) => {
      release?.();
      const terminatedFor = this.#terminated?.socket === socket ? this.#terminated.reason : undefined;
      if (terminatedFor !== undefined) this.#terminated = undefined;
      if (this.#socket !== socket) return;
      this.#socket = undefined;
      const identifying = opened && !this.#open;
      this.#stopHeartbeat();
      const atOnce = this.#streak.closed() && opened;
      const closedAtOnce = `${CLOSED_AT_ONCE} (${closeCode(code, reason)})`;
      // A 1009 from the node refuses the largest request it had yet to read, pending or timed out
      // (read even when a call sent into the closing socket had evmux terminate it), if it is one
      // a node may refuse.
      const unread = oversized === undefined && code === MESSAGE_TOO_BIG ? this.#pending.largestUnread() : undefined;
      const refused = unread !== undefined && unread.bytes >= SMALLEST_REFUSABLE_BYTES ? unread : undefined;
      let cause: CloseCause = refused !== undefined ? 'own' : 'node';
      if (oversized !== undefined) {
        cause = this.#markClosedByAnswer(oversized.id);
        if (identifying) {
          // Never open to its users: its identity check was answered so (no node does that).
          cause = 'node';
          if (!this.#closed) this.#connectFailed(`an answer of more than ${this.#options.maxAnswerBytes} bytes (limits.maxAnswerBytes) to its identity check`);
        }
      } else if (refused !== undefined) this.#markClosedByRequest(refused);
      else if (identifying) {
        // Never open to its users: a failed connect attempt, for the node's identity, for the node
        // closing it (an API key over its quota), or for what evmux cut it for (no pong).
        this.#markClosed('socket closed');
        if (!this.#closed) this.#connectFailed(misidentified ?? (code === ABNORMAL_CLOSURE ? (terminatedFor ?? closedAtOnce) : closedAtOnce));
      } else if (atOnce && !this.#closed) this.#markClosed('socket closed', true, closedAtOnce);
      else this.#markClosed(terminatedFor !== undefined ? `terminated: ${terminatedFor}` : `socket closed (${closeCode(code, reason)})`);
      // Closed for evmux's own reasons (a message over maxAnswerBytes no call asked for, a request too large): back at once.
      if (!this.#closed) this.#streak.schedule(cause);
    });
  }

  /**
   * A request made on its own goes out at once. One made within the coalescing window of the last
   * request, or while others wait, waits for the check phase right after this poll, and the
   * requests made meanwhile leave together: one write for a burst of client frames instead of one
   * system call each. (Waiting costs a setImmediate and its callback, ~2,500 instructions, which a
   * lone request is spared. A socket corked for every request buffers each write as an object of
   * its own first.)
   */
  #queue(socket: WebSocket, frame: Buffer, now: number): void {
    const alone = now - this.#lastRequestAt >= this.#coalesceWindowMs;
    this.#lastRequestAt = now;
    if (alone && this.#outgoingCount === 0) {
      this.#sendNow(socket, frame);
      return;
    }
    if (this.#outgoingCount === 0) {
      this.#outgoingSocket = socket;
      setImmediate(this.#flush);
    }
    this.#outgoing[this.#outgoingCount++] = frame;
  }

  /**
   * Every write to a node goes through here. Without a callback: a write callback makes Node's
   * stream schedule a nextTick after every write that completes at once (~1,200 instructions a
   * call), and a socket that fails a write while open reports it through 'close', which fails the
   * calls pending on it. A socket already closing would drop the frame: it is dropped at once
   * instead, after this call returns, which fails every call pending on it and reconnects. (One
   * already closed and replaced has failed its calls: nothing to do.)
   */
  #sendNow(socket: WebSocket, frame: Buffer): void {
    if (socket.readyState === WebSocket.OPEN) {
      writeFrame(socket, frame);
      return;
    }
    process.nextTick(() => {
      if (this.#socket === socket) this.terminate('send on a closing socket', true);
    });
  }

  readonly #flush = (): void => {
    const socket = this.#outgoingSocket;
    const count = this.#outgoingCount;
    this.#outgoingSocket = undefined;
    const tcp = count > 1 && socket?.readyState === WebSocket.OPEN ? (socket as unknown as { _socket?: Socket })._socket : undefined;
    tcp?.cork();
    // As bytes: ws masks them straight into the frame it writes, one buffer instead of two.
    if (socket !== undefined) for (let i = 0; i < count; i++) this.#sendNow(socket, this.#outgoing[i]!);
    this.#dropOutgoing();
    if (this.#pingAfterFlush && socket !== undefined) this.#ping(socket);
    this.#pingAfterFlush = false;
    tcp?.uncork();
  };

  #dropOutgoing(): void {
    for (let i = 0; i < this.#outgoingCount; i++) this.#outgoing[i] = undefined;
    this.#outgoingCount = 0;
  }

  #onFrame(frame: Buffer): void {
    let parsed;
    try {
      parsed = parseUpstreamFrame(frame);
    } catch {
      // A node that sends garbage cannot be trusted with the calls in flight on this socket.
      this.terminate('unparseable frame from upstream');
      return;
    }
    if (parsed.id !== undefined && parsed.reply !== undefined) {
      // Late or not, an answer shows the node working through what was sent before it, and that it has read it all.
      this.#ahead.answered(parsed.id);
      this.#delivered(parsed.id);
      const pending = this.#pending.take(parsed.id);
      if (pending === undefined) {
        // Timed out already; a subscription made meanwhile is nobody's.
        if (this.#lateSubscribes.take(parsed.id, performance.now())) this.#unsubscribeLate(parsed.reply);
        return;
      }
      this.#answered++;
      this.#settle(pending, parsed.reply);
      return;
    }
    if (parsed.message === undefined) return;
    if (parsed.message.id === null && 'error' in parsed.message) this.#onUnmatchedError(parsed.message);
    else this.emit('notification', parsed.message);
  }

  /** A timed-out eth_subscribe's late answer: a subscription on the node nobody reads, undone. */
  #unsubscribeLate(reply: UpstreamReply): void {
    if (reply.error !== undefined) return;
    const id = replyResult(reply);
    if (typeof id !== 'string') return;
    this.#options.logger.info({ subscription: id }, 'upstream answered eth_subscribe after its timeout: unsubscribed');
    this.send('eth_unsubscribe', [id], LATE_UNSUBSCRIBE_TIMEOUT_MS, IGNORED);
  }

  /**
   * An error under id null: the node could not read one of the requests sent to it, so it could not
   * give that request's id (anvil: -32600 "Invalid request"). With one call in flight it is that
   * call's answer. With several there is no telling which; they wait for their answers or timeouts.
   * evmux refuses the params it knows nodes cannot read (forwardable-params.ts), so this is a node
   * that reads less than they do.
   */
  #onUnmatchedError(message: Record<string, unknown>): void {
    const inFlight = this.#pending.size;
    this.#warnings.warn({ error: message.error, inFlight }, 'upstream could not read a request it was sent (error with id null)');
    if (inFlight !== 1) return;
    const [only] = this.#pending.takeAll();
    this.#noteRoom();
    this.#settle(only!, replyFromObject(message));
  }

  /**
   * Hand a call its outcome. Sinks run synchronously here, inside the socket's event handlers, where
   * a throw would take the process down: a sink that throws is a bug, logged, not fatal.
   */
  #settle(pending: Pending, outcome: UpstreamReply | UpstreamFailure): void {
    try {
      if (outcome instanceof UpstreamFailure) pending.sink.reject(outcome);
      else pending.sink.resolve(outcome);
    } catch (error) {
      this.#options.logger.error({ err: error, method: pending.method }, 'call outcome handler threw');
    }
  }

  /**
   * A message over maxAnswerBytes is being skipped unread (frame-reader.ts) on the open socket:
   * it answers call `id` (read from its first bytes as they come in, or else from its last), one
   * that may ask for much. That call fails as asking too much, and is not
   * tried elsewhere (each node would send as much); the socket and the calls beside it go on. Its
   * asker is noted ('oversized': a client, or evmux itself for its own calls, such as the fetch of
   * a block's logs), so that its calls go to a socket of their own, where its next such answer
   * holds up no one else's. An answer to a call that has timed out is skipped as well. Returns
   * false, for the socket to be closed, when the message is no answer to a call made on it (a
   * notification over the limit, lost unless the socket is made again and its streams replayed),
   * or answers a question with a few bytes for answer (SMALL_ANSWERS: a probe, a subscribe), which
   * only a broken node does.
   */
  #skippedAnswer(id: number | undefined): boolean {
    if (id === undefined || !Number.isSafeInteger(id) || id >= this.#nextId) return false;
    const culprit = this.#pending.get(id);
    if (culprit !== undefined && SMALL_ANSWERS.has(culprit.method)) return false;
    const limit = this.#options.maxAnswerBytes;
    this.#warnings.warn({ method: culprit?.method, limit }, 'upstream answer over limits.maxAnswerBytes skipped');
    // An answer all the same: the node is working through what was sent before it, and has read it all.
    this.#ahead.answered(id);
    this.#delivered(id);
    if (culprit === undefined) return true;
    this.#pending.take(id);
    this.#answered++;
    this.#noteRoom();
    this.emit('oversized', culprit.sink.clientId ?? OWN_CALLS);
    this.#settle(culprit, this.#answerTooLarge(culprit.method));
    return true;
  }

  #answerTooLarge(method: string): UpstreamFailure {
    return this.#failure('EVMUX_ANSWER_TOO_LARGE', `the answer to ${method} is larger than ${this.#options.maxAnswerBytes} bytes`, false);
  }

  /**
   * A message over maxAnswerBytes that closed the socket (#skippedAnswer). The call it answers (when
   * its id could be read: a probe, a subscribe, the identity check) fails as asking too much, and
   * the socket comes back with the backoff (`node`: a node answering everything over the limit was
   * reconnected to ten times a second); the others pending here fail as on any close. A message no
   * call pending asked for is `own`: the socket comes back at once.
   */
  #markClosedByAnswer(id: number | undefined): CloseCause {
    const limit = this.#options.maxAnswerBytes;
    const culprit = id === undefined ? undefined : this.#pending.take(id);
    this.#warnings.warn({ method: culprit?.method, limit }, 'upstream message over limits.maxAnswerBytes: socket closed');
    if (culprit !== undefined) this.#settle(culprit, this.#answerTooLarge(culprit.method));
    this.#markClosed(`a message of more than ${limit} bytes closed the socket`, false);
    return culprit === undefined ? 'own' : 'node';
  }

  /**
   * The node closed the socket with 1009 (message too big): `culprit`, the largest request it had
   * yet to read, was more than it takes (one it had read, as large or larger, would say its limit is
   * higher). Still pending, that call fails as too large (another node may take it); one that timed
   * out first (a slow link: the node's close waits behind what it is sending) is blamed all the same,
   * not the largest call still pending. Frames as large are kept from the node's sockets for a while
   * (FrameLimit), and the calls beside it fail as closed under them, the node not blamed: a client's
   * request does not make the node unhealthy. (With no request of SMALLEST_REFUSABLE_BYTES unread,
   * the close is the node's.)
   */
  #markClosedByRequest(culprit: Pending): void {
    this.#options.frameLimit.refused(culprit.bytes, performance.now());
    this.#options.logger.warn(
      { method: culprit.method, bytes: culprit.bytes },
      'upstream closed its socket on a request too large for it (1009 message too big): requests as large are not sent to it for 10 minutes',
    );
    const why = `the node closed its socket on the ${culprit.method} request of ${culprit.bytes} bytes (1009 message too big): it takes smaller requests`;
    // One that timed out first has had its answer.
    if (this.#pending.take(culprit.id) !== undefined) this.#settle(culprit, this.#failure('EVMUX_REQUEST_TOO_LARGE', why, false));
    this.#markClosed(`the node refused a request of ${culprit.bytes} bytes (1009 message too big)`, false);
  }

  /**
   * `blamesNode`: false when evmux closed the socket for a reason of its own (UpstreamFailure.blamesNode).
   * `failedConnect`: the socket closed right after opening, logged as a failed connect attempt.
   */
  #markClosed(reason: string, blamesNode = true, failedConnect?: string): void {
    const wasOpen = this.#open;
    this.#open = false;
    this.#disarmDeadline();
    this.#dropOutgoing();
    this.#outgoingSocket = undefined;
    const failed = this.#pending.takeAll();
    this.#ahead.clear();
    this.#lateSubscribes.clear();
    // The node hears of the close before the calls it failed are settled: their sinks try them
    // again at once, on another node. Settled first, a blip's retries went to the node closed
    // beside this one, as it still served, and failed there as not connected.
    if (wasOpen) {
      // Closed by evmux itself (shutting down): nothing to warn of.
      if (failedConnect !== undefined) this.#connectFailed(failedConnect);
      // Closed for a reason of evmux's own: its own warning (throttled) said why, and a client
      // repeating a call with an answer over maxAnswerBytes made two lines a time of this and the open.
      else this.#options.logger[this.#closed ? 'info' : blamesNode ? 'warn' : 'debug']({ reason }, 'upstream socket closed');
      this.#quietReopen = !blamesNode;
      if (failedConnect === undefined && blamesNode && !this.#closed) this.emit('failed', reason);
      this.emit('close', !blamesNode);
    }
    this.#noteRoom();
    for (const pending of failed) this.#settle(pending, this.#failure('EVMUX_SOCKET_CLOSED', reason, blamesNode));
  }

  /** Calls left the socket: tell whoever waits for room (Upstream's queue) once there is some again. */
  #noteRoom(): void {
    if (!this.#full || !this.hasRoom) return;
    this.#full = false;
    this.emit('room');
  }

  /**
   * Expiry is judged after the reads of the loop turn the timer fires in (afterReads): answers that
   * came while evmux itself was paused are read first, and count.
   */
  #armDeadline(at: number): void {
    clearTimeout(this.#deadlineTimer);
    this.#deadlineAt = at;
    const timer = setTimeout(
      () =>
        afterReads(() => {
          if (this.#deadlineTimer === timer) this.#expire();
        }),
      Math.max(1, Math.ceil(at - performance.now())),
    );
    this.#deadlineTimer = timer;
  }

  #disarmDeadline(): void {
    clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = undefined;
    this.#deadlineAt = Infinity;
  }

  #expire(): void {
    this.#deadlineTimer = undefined;
    this.#deadlineAt = Infinity;
    const now = performance.now();
    const expired = this.#pending.takeExpired(now);
    this.#noteRoom();
    for (const call of expired) {
      if (call.method === 'eth_subscribe') this.#lateSubscribes.timedOut(call.id, now);
      const slow = this.#answered > call.answeredBefore;
      this.#settle(call, this.#failure('EVMUX_TIMEOUT', `${call.method} timed out after ${Math.round(call.timeoutMs)} ms`, !slow));
    }
    const next = this.#pending.earliestDeadline();
    if (next !== Infinity) this.#armDeadline(next);
  }

  /** A connect attempt failed, or its socket closed right after opening (ReconnectStreak.failed). */
  #connectFailed(reason: string, retryAfterMs?: number): void {
    this.#streak.failed(reason, retryAfterMs);
    this.emit('failed', reason);
  }

  #startHeartbeat(socket: WebSocket): Heartbeat<ProgressMark> {
    const { intervalMs, timeoutMs } = this.#options.heartbeat;
    return new Heartbeat<ProgressMark>(
      {
        open: () => socket.readyState === WebSocket.OPEN,
        ping: () => this.#ping(socket),
        progressMark: () => this.progressMark(),
        busySince: (mark) => this.busySince(mark),
        renewed: (mark) => ({ received: this.#received.mark(), ahead: mark.ahead }),
        releaseMark: (mark) => this.releaseMark(mark),
        lost: (reason) => this.terminate(reason),
      },
      intervalMs,
      timeoutMs,
    );
  }

  #stopHeartbeat(): void {
    this.#heartbeat?.stop();
    this.#heartbeat = undefined;
  }

  #failure(code: UpstreamFailure['code'], message: string, blamesNode = true): UpstreamFailure {
    return new UpstreamFailure(code, `${this.#options.upstream}: ${message}`, this.#options.upstream, blamesNode);
  }
}

/** A WebSocket close's code, and its reason when it gave one. */
function closeCode(code: number, reason: Buffer): string {
  return `code ${code}${reason.length > 0 ? `: ${reason.toString()}` : ''}`;
}
