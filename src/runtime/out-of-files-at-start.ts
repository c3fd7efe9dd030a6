/**
 * Running out of open files while starting. Node's module loader reads a module's imports in
 * parallel, and under a low open-files limit it fails before any of evmux's code runs: with a stack,
 * or, when the failed read was a package lookup, as a package "not found". So cli.ts checks the
 * limit before it loads the command, and loads it by a dynamic import to catch the rest; the command
 * reports the same for what it opens later (the demo's modules, anvil, its sockets).
 */
import { openFds } from './open-fds.js';
import { openFilesLimit } from './open-files.js';

/** Free descriptors evmux needs to load and start: it loads with ~70 free, and its sockets need some. */
export const MIN_FREE_FILES_TO_START = 96;

/**
 * Free descriptors the demo needs, checked instead of MIN_FREE_FILES_TO_START: it loads viem and
 * the devnet's modules and starts three anvil nodes. Below this its loads failed now and then with
 * a false "Cannot find package" (Node's resolver takes an EMFILE in a package lookup for a missing
 * package), a stack, not this message.
 */
export const DEMO_FREE_FILES = 200;

const ADVICE = 'raise the open-files limit (ulimit -n; evmux needs about 128, the demo about 256, and one more per client connection)';

/** If `error` is a lack of descriptors, say so on stderr with what to do, and return true. */
export function reportOutOfFilesAtStart(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code !== 'EMFILE' && code !== 'ENFILE') return false;
  process.stderr.write(`evmux: out of open files while starting (${(error as Error).message}): ${ADVICE}\n`);
  return true;
}

/**
 * Whether `needed` descriptors are free for `what`; if not, say so on stderr. Where /proc cannot tell
 * (not Linux), true.
 */
export async function enoughFilesToStart(needed = MIN_FREE_FILES_TO_START, what = 'starting'): Promise<boolean> {
  const limit = openFilesLimit();
  const open = limit === undefined ? undefined : await openFds();
  if (limit === undefined || open === undefined || limit - open >= needed) return true;
  process.stderr.write(`evmux: the open-files limit is ${limit} with ${open} open already, and ${what} needs ${needed} free: ${ADVICE}\n`);
  return false;
}
