/**
 * Params a node can read. `JSON.parse` accepts two things that nodes' parsers refuse, and a node
 * that cannot read a request cannot say which request it was: anvil answers
 * `{"id":null,"error":{"code":-32600,"message":"Invalid request"}}`. evmux could not match that to
 * the call, so the call waited out its timeout on every node tried, and each timeout counted
 * against that node's circuit breaker: one client's request took the nodes out of rotation for
 * everyone (measured: a 200-deep params array, 15 s to the client's error, two breakers open).
 * - Nesting: serde_json (anvil, reth) stops at 128 levels for the whole request. Ethereum's methods
 *   nest a handful deep (`eth_simulateV1` with state overrides: about 7), so evmux refuses params
 *   deeper than MAX_PARAMS_DEPTH, well inside that.
 * - Unpaired UTF-16 surrogates written as escapes (`"\ud800"`), which no UTF-8 text can hold.
 *   Only an escape can put one in a string (a WebSocket text frame must be valid UTF-8, and an HTTP
 *   body is decoded with replacement characters), so strings are looked at only when the params'
 *   text has a backslash, or when that text is not known.
 */
export const MAX_PARAMS_DEPTH = 32;

/** A lone surrogate: with the `u` flag a paired one is read as one code point outside Cs. */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Why these params cannot go to a node, or undefined. `text` is their JSON as the client wrote it,
 * when known: short text cannot nest too deeply, and text without escapes holds no surrogates.
 */
export function unforwardableParams(params: unknown, text: string | undefined): string | undefined {
  const escaped = text === undefined || text.indexOf('\\') !== -1;
  if (!escaped && text.length <= 2 * MAX_PARAMS_DEPTH) return undefined;
  return problemIn(params, 1, escaped);
}

/** Depth-first, never deeper than MAX_PARAMS_DEPTH + 1 frames whatever the params' own depth. */
function problemIn(value: unknown, depth: number, strings: boolean): string | undefined {
  if (typeof value === 'string') return strings && LONE_SURROGATE.test(value) ? surrogateIn(value) : undefined;
  if (value === null || typeof value !== 'object') return undefined;
  if (depth > MAX_PARAMS_DEPTH) return `params nest deeper than ${MAX_PARAMS_DEPTH} levels, more than nodes accept`;
  if (Array.isArray(value)) {
    for (const item of value as unknown[]) {
      const problem = problemIn(item, depth + 1, strings);
      if (problem !== undefined) return problem;
    }
    return undefined;
  }
  for (const key in value) {
    if (strings && LONE_SURROGATE.test(key)) return surrogateIn(key);
    const problem = problemIn((value as Record<string, unknown>)[key], depth + 1, strings);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

function surrogateIn(text: string): string {
  const unit = text.charCodeAt(text.search(LONE_SURROGATE)).toString(16);
  return `params hold an unpaired UTF-16 surrogate (\\u${unit}) in a string, which nodes cannot read`;
}
