import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { POLL_NS, enableHaltPolling } from '../../bench/halt-polling.js';

const roots: string[] = [];
/** A sysfs look-alike with the given cpuidle driver and, unless undefined, guest_halt_poll_ns. */
function fakeSys(driver: string, pollNs: number | undefined): { root: string; pollFile: string } {
  const root = mkdtempSync(join(tmpdir(), 'evmux-sys-'));
  roots.push(root);
  mkdirSync(join(root, 'devices/system/cpu/cpuidle'), { recursive: true });
  writeFileSync(join(root, 'devices/system/cpu/cpuidle/current_driver'), `${driver}\n`);
  const pollFile = join(root, 'module/haltpoll/parameters/guest_halt_poll_ns');
  if (pollNs !== undefined) {
    mkdirSync(join(root, 'module/haltpoll/parameters'), { recursive: true });
    writeFileSync(pollFile, `${pollNs}\n`);
  }
  return { root, pollFile };
}
const pollNow = (file: string): number => Number(readFileSync(file, 'utf8').trim());

afterEach(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

describe('bench: halt polling for the length of a run', () => {
  it('switches polling on under the haltpoll driver and puts the old value back once', () => {
    const { root, pollFile } = fakeSys('haltpoll', 0);
    const { result, undo } = enableHaltPolling(root);
    assert.deepEqual(result, { driver: 'haltpoll', before: 0, during: POLL_NS });
    assert.equal(pollNow(pollFile), POLL_NS);
    undo();
    assert.equal(pollNow(pollFile), 0);
    writeFileSync(pollFile, '123\n');
    undo();
    assert.equal(pollNow(pollFile), 123, 'a second undo writes nothing');
  });

  it('leaves a machine that already polls as long alone', () => {
    const { root, pollFile } = fakeSys('haltpoll', 2 * POLL_NS);
    const { result, undo } = enableHaltPolling(root);
    assert.equal(result.during, 2 * POLL_NS);
    undo();
    assert.equal(pollNow(pollFile), 2 * POLL_NS);
  });

  it('changes nothing under another cpuidle driver, and says why', () => {
    const { root, pollFile } = fakeSys('acpi_idle', 0);
    const { result } = enableHaltPolling(root);
    assert.equal(result.during, 0);
    assert.match(result.note ?? '', /cpuidle driver acpi_idle/);
    assert.equal(pollNow(pollFile), 0);
  });

  it('reports a machine without the haltpoll module', () => {
    const { root } = fakeSys('haltpoll', undefined);
    const { result } = enableHaltPolling(root);
    assert.deepEqual([result.before, result.during], [null, null]);
    assert.match(result.note ?? '', /no haltpoll parameters/);
  });
});
