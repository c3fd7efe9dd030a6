#!/usr/bin/env -S node --max-semi-space-size=32 --min-semi-space-size=32
/**
 * The evmux command's entry (command.ts is the command). Under too low an open-files limit, loading
 * the command's modules fails inside Node's loader; the limit is checked first, and the modules are
 * loaded by a dynamic import, so such a start ends with a message (runtime/out-of-files-at-start.ts).
 * The shebang passes node the young-generation flags of runtime/young-generation.ts.
 */
import { enoughFilesToStart, reportOutOfFilesAtStart } from './runtime/out-of-files-at-start.js';

if (!(await enoughFilesToStart())) process.exit(1);
let command: typeof import('./command.js');
try {
  command = await import('./command.js');
} catch (error) {
  if (!reportOutOfFilesAtStart(error)) throw error;
  process.exit(1);
}
command.runCommand();
