/**
 * Stops accepting clients while they hold every descriptor the process may open, and accepts again
 * once enough are free (DescriptorReserve tells when). While paused, connections to the client port
 * are refused and /readyz says so on the admin listener; open connections and streams go on.
 */
import type { Logger } from 'pino';
import { DescriptorReserve, reserveSizes } from '../runtime/descriptor-reserve.js';
import type { FrontEnd } from './front-end.js';

/** After a failed listen, the next try */
const RETRY_LISTEN_MS = 1000;

export interface AcceptTelemetry {
  /** false while accepting is paused for want of descriptors */
  accepting(on: boolean): void;
}

export class AcceptGuard {
  readonly #frontEnd: FrontEnd;
  readonly #logger: Logger;
  readonly #telemetry: AcceptTelemetry;
  readonly #reserve: DescriptorReserve | undefined;
  #paused = false;
  #retry: NodeJS.Timeout | undefined;
  #closed = false;

  /** Without a known open-files limit (not Linux) there is nothing to guard. */
  constructor(frontEnd: FrontEnd, openFiles: number | undefined, logger: Logger, telemetry: AcceptTelemetry) {
    this.#frontEnd = frontEnd;
    this.#logger = logger;
    this.#telemetry = telemetry;
    telemetry.accepting(true);
    if (openFiles === undefined) return;
    const { size, headroom } = reserveSizes(openFiles);
    try {
      this.#reserve = new DescriptorReserve(size, headroom, { exhausted: () => this.#pause(openFiles), recovered: () => this.#resume() });
    } catch (error) {
      logger.warn({ err: (error as Error).message }, 'no descriptor reserve (cannot open /dev/null): clients may take every open file');
    }
  }

  /** False while paused. */
  get accepting(): boolean {
    return !this.#paused;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#retry);
    this.#reserve?.close();
  }

  #pause(openFiles: number): void {
    clearTimeout(this.#retry);
    this.#frontEnd.pause();
    if (this.#paused) return;
    this.#paused = true;
    this.#telemetry.accepting(false);
    this.#logger.warn({ openFiles }, 'open files exhausted by client connections: not accepting clients until some close');
  }

  #resume(): void {
    if (this.#closed) return;
    this.#frontEnd.resume().then(
      () => {
        if (this.#closed) return;
        this.#paused = false;
        this.#telemetry.accepting(true);
        this.#logger.info('descriptors free again: accepting clients');
      },
      (error: Error) => {
        this.#logger.error({ err: error.message }, 'cannot listen again after running out of open files; retrying');
        if (!this.#closed && this.#reserve?.exhausted === false) this.#retry = setTimeout(() => this.#resume(), RETRY_LISTEN_MS);
      },
    );
  }
}
