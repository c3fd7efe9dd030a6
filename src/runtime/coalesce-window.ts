/**
 * Writes made closer together than this (ms) are taken for a burst: they wait for the end of the
 * poll and leave together, one system call instead of one each. Under load a poll's frames are
 * handled microseconds apart; at a few thousand calls a second, hundreds apart, and a frame on its
 * own goes out at once (waiting costs a setImmediate and its callback, ~2,500 instructions).
 * Used for requests to nodes (connection.ts) and answers to clients (uws-adapter.ts).
 */
export const COALESCE_WINDOW_MS = 0.05;
