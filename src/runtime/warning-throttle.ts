/**
 * Warnings that one cause repeats, at most one per message and upstream every `windowMs`. One cause
 * (a node that refuses eth_getLogs, a replay bound, a failed subscribe) hits every topic on a node at
 * once, and 2,000 logs topics logged 2,000 lines for it every second. The first warning is logged at
 * once; those after it in the window are counted, and the count goes out with the next one logged
 * (`suppressed`). Metrics count every occurrence. A logger already bound to one upstream (an
 * upstream socket's) leaves `upstream` out.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from '../log.js';

export const WARNING_WINDOW_MS = 10_000;

export class WarningThrottle {
  readonly #logger: Logger;
  readonly #windowMs: number;
  readonly #last = new Map<string, { at: number; suppressed: number }>();

  constructor(logger: Logger, windowMs = WARNING_WINDOW_MS) {
    this.#logger = logger;
    this.#windowMs = windowMs;
  }

  warn(fields: { upstream?: string } & Record<string, unknown>, message: string, now = performance.now()): void {
    const key = `${fields.upstream ?? ''}\u0000${message}`;
    const last = this.#last.get(key);
    if (last !== undefined && now - last.at < this.#windowMs) {
      last.suppressed++;
      return;
    }
    const suppressed = last?.suppressed ?? 0;
    this.#last.set(key, { at: now, suppressed: 0 });
    this.#logger.warn(suppressed > 0 ? { ...fields, suppressed } : fields, message);
  }
}
