import assert from 'node:assert/strict';
import { closeSync, openSync, readdirSync } from 'node:fs';
import { test } from 'node:test';

import { Metrics } from '../../src/metrics.js';
import { openFds } from '../../src/runtime/open-fds.js';
import { sumSamples } from '../support/prom-text.js';

test('open descriptors are counted as /proc lists them, 50 more after 50 opens, and exported under the name prom-client gave them', async () => {
  const before = await openFds();
  assert.equal(before, readdirSync('/proc/self/fd').length - 1, 'the listing, less the descriptor it was read through');
  const opened = Array.from({ length: 50 }, () => openSync('/dev/null', 'r'));
  try {
    assert.equal(await openFds(), before + 50);
    const text = await new Metrics(['a']).exposition();
    assert.equal(sumSamples(text, 'evmux_process_process_open_fds'), before + 50);
    assert.match(text, /# HELP evmux_process_process_open_fds Number of open file descriptors\./);
    assert.equal(text.match(/^# TYPE evmux_process_process_open_fds /gm)?.length, 1, 'one such metric, not prom-client\'s beside it');
  } finally {
    opened.forEach((fd) => closeSync(fd));
  }
});
