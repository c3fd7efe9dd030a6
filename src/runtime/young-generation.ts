/**
 * The V8 young generation evmux is tuned for. Every proxied call leaves a few KB of short-lived
 * garbage; with V8's default the young generation starts at 1 MB and stays small while little of it
 * survives, so at 5k calls/s evmux scavenged about 30 times a second, and each scavenge stalled the
 * calls that arrived during it. Fixed 32 MB semi-spaces scavenge about once a second instead
 * (BENCHMARKS.md).
 *
 * V8 reads these flags only at startup, so they sit on the node command line: the `evmux` command's
 * shebang (src/cli.ts) carries them, a unit test keeps the two in step, and the CLI warns when it
 * was started without them.
 */
import { getHeapSpaceStatistics } from 'node:v8';

export const SEMI_SPACE_MB = 32;

/** The node flags that give evmux its young generation. */
export const YOUNG_GENERATION_FLAGS: readonly string[] = [`--max-semi-space-size=${SEMI_SPACE_MB}`, `--min-semi-space-size=${SEMI_SPACE_MB}`];

/**
 * This process's current semi-space capacity in MB: what the new space can hold before the next
 * scavenge (used + available; its committed size counts both semi-spaces once both are in use).
 * Page headers make it a little short of the configured size, hence rounding up.
 */
export function semiSpaceMb(): number {
  const newSpace = getHeapSpaceStatistics().find((space) => space.space_name === 'new_space');
  return newSpace === undefined ? 0 : Math.ceil((newSpace.space_used_size + newSpace.space_available_size) / 2 ** 20);
}
