/**
 * Bodies too costly to parse, found before they are. V8's `JSON.parse` costs about 0.3 µs per level
 * of nesting, some 50 times a flat string's cost per byte: a 5 MiB body of `[` held the event loop,
 * and so every other client, for 1.6 s, only to be refused after. Small values cost too, each one
 * made on the heap: 5 MiB of `[[],[],…]` took 1.5 s, of `[0,0,…]` 0.65 s. One pass over the text
 * counts how deep it nests, how many arrays and objects it holds and how many values they
 * separate, and stops at the first count past its limit; a body past one is refused unread. The
 * limits are past any request evmux forwards: a batch's array, a request object and params
 * MAX_PARAMS_DEPTH deep; a batch of `limits.maxBatchSize` calls with a few containers each; 5 MiB
 * of addresses. On a body it lets through, the pass costs about half of what `JSON.parse` then does
 * on a large batch, next to nothing on a blob transaction's hex.
 */
import { MAX_PARAMS_DEPTH } from './forwardable-params.js';
import { stringEndAt } from './json-string-end.js';

/**
 * Shorter bodies are parsed without the scan, which small calls, the hot path, would pay for
 * nothing: nested all the way, 16 KiB costs `JSON.parse` about 3 ms.
 */
export const SHAPE_SCAN_FROM = 16 * 1024;

export interface ShapeLimits {
  /** arrays and objects open inside one another at one point */
  depth: number;
  /** arrays and objects in all */
  containers: number;
  /** commas between items and members, in all */
  separators: number;
}

/** The most a body evmux reads may hold (their parse, at the limit: about 50 ms). */
export const BODY_LIMITS: ShapeLimits = {
  /** a batch's array, the request object and its params */
  depth: MAX_PARAMS_DEPTH + 2,
  containers: 50_000,
  separators: 250_000,
};

const QUOTE = 0x22;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/**
 * The first of `limits` that `text`, read as JSON, passes, or undefined; brackets and commas
 * inside strings do not count. It need not be valid JSON: where it is not, `JSON.parse` stops at
 * the first character that breaks the grammar, and up to there these counts are the parser's.
 */
export function shapeExcess(text: string, limits: ShapeLimits): keyof ShapeLimits | undefined {
  let depth = 0;
  let containers = 0;
  let separators = 0;
  for (let at = 0; at < text.length; at++) {
    const c = text.charCodeAt(at);
    if (c === QUOTE) {
      at = stringEndAt(text, at);
      if (at < 0) return undefined;
    } else if (c === COMMA) {
      if (++separators > limits.separators) return 'separators';
    } else if (c === OPEN_BRACKET || c === OPEN_BRACE) {
      if (++depth > limits.depth) return 'depth';
      if (++containers > limits.containers) return 'containers';
    } else if (c === CLOSE_BRACKET || c === CLOSE_BRACE) {
      depth--;
    }
  }
  return undefined;
}
