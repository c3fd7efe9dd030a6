/**
 * Requests sent ahead of a ping or a probe, and whether the node is working through them. A node
 * reads a ping, and a probe, after the bytes sent before it, so behind a narrow link one client's
 * large requests (1 MB calls at 1 MB/s) hold them back for as long as those take to arrive.
 * Counted as silence, the heartbeat cut the socket under the requests and the probes marked the
 * node down for every client. While answers to the requests ahead keep coming, the node is busy
 * with them, not gone: each wait that sees one is followed by another. Each request is answered at
 * most once, so a node that answers them all and still does not pong is cut in the end.
 */

/** Unanswered request bytes ahead of a mark below which they are not a backlog (a few small calls). */
const BACKLOG_BYTES = 64 * 1024;

export interface AheadMark {
  /** calls with a lower id were sent before the mark */
  readonly fence: number;
  /** answers to them since the mark */
  answered: number;
  /** `answered` when progressed last looked */
  seen: number;
}

export class RequestsAhead {
  readonly #marks = new Set<AheadMark>();

  /**
   * A mark for a frame going out now: `nextId` is the id the next call will get, `unansweredBytes`
   * the request bytes sent and not yet answered. Undefined when that is no backlog. Release it.
   */
  mark(nextId: number, unansweredBytes: number): AheadMark | undefined {
    if (unansweredBytes < BACKLOG_BYTES) return undefined;
    const mark: AheadMark = { fence: nextId, answered: 0, seen: 0 };
    this.#marks.add(mark);
    return mark;
  }

  /** The node answered call `id`. */
  answered(id: number): void {
    if (this.#marks.size === 0) return;
    for (const mark of this.#marks) if (id < mark.fence) mark.answered++;
  }

  /** Whether a request ahead of `mark` was answered since the last time this was asked. */
  progressed(mark: AheadMark | undefined): boolean {
    if (mark === undefined) return false;
    const progressed = mark.answered > mark.seen;
    mark.seen = mark.answered;
    return progressed;
  }

  release(mark: AheadMark | undefined): void {
    if (mark !== undefined) this.#marks.delete(mark);
  }

  /** The socket closed: its requests will not be answered. */
  clear(): void {
    this.#marks.clear();
  }
}
