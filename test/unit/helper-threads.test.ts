import assert from 'node:assert/strict';
import { test } from 'node:test';

import { applyHelperThreadPriority } from '../../src/runtime/helper-threads.js';

// The path that changes threads runs in test/integration/helper-threads.test.ts, on a child process:
// here it would put the test runner's own helper threads at idle priority.
test('"normal" leaves every thread alone', async () => {
  assert.deepEqual(await applyHelperThreadPriority('normal', 1), { wanted: false, idled: 0, reason: 'helperThreads is "normal"' });
});

test('"auto" leaves every thread alone when evmux may use more than one CPU', async () => {
  assert.deepEqual(await applyHelperThreadPriority('auto', 4), { wanted: false, idled: 0, reason: 'evmux may run on 4 CPUs' });
});
