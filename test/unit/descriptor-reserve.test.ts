import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';

import { reserveSizes } from '../../src/runtime/descriptor-reserve.js';

/**
 * Runs in a node under 100 open files: takes a reserve of 8 (headroom 8), then plays the clients:
 * opens /dev/null until the table is full, and prints what it saw as one JSON line.
 */
const CHILD = `
import { openSync, closeSync } from 'node:fs';
import { DescriptorReserve } from './src/runtime/descriptor-reserve.ts';
const events = [];
const reserve = new DescriptorReserve(8, 8, { exhausted: () => events.push('exhausted'), recovered: () => events.push('recovered') }, 20);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const clients = [];
const fillTable = () => { try { for (;;) clients.push(openSync('/dev/null', 'r')); } catch (error) { return error.code; } };
const full = fillTable();
const before = clients.length;
await sleep(200);
const freedByReserve = fillTable() === 'EMFILE' ? clients.length - before : -1;
const eventsWhenFull = [...events];
for (const fd of clients.splice(-10)) closeSync(fd);
await sleep(200);
const stillWaiting = [...events];
for (const fd of clients.splice(-10)) closeSync(fd);
await sleep(200);
const left = clients.length;
fillTable();
const heldAgain = 20 - (clients.length - left);
reserve.close();
console.log(JSON.stringify({ full, eventsWhenFull, freedByReserve, stillWaiting, events, heldAgain }));
`;

describe('descriptor reserve', () => {
  it('holds a reserve, gives it back when clients fill the table, and takes it back once size + headroom are free', () => {
    const out = execFileSync('prlimit', ['--nofile=100', process.execPath, '--import', 'tsx', '--input-type=module', '-e', CHILD], { encoding: 'utf8' });
    const seen = JSON.parse(out.trim()) as Record<string, unknown>;
    assert.equal(seen['full'], 'EMFILE');
    assert.deepEqual(seen['eventsWhenFull'], ['exhausted'], 'exhausted once, within a few checks');
    assert.equal(seen['freedByReserve'], 8, 'its 8 descriptors given back');
    assert.deepEqual(seen['stillWaiting'], ['exhausted'], '10 free are fewer than size + headroom (16): not recovered');
    assert.deepEqual(seen['events'], ['exhausted', 'recovered'], '20 free: recovered');
    assert.equal(seen['heldAgain'], 8, 'the reserve holds its 8 again');
  });

  it('is 8 to 64 descriptors, a 64th of the limit, with a 40th of it (at least the size) free to resume', () => {
    assert.deepEqual(reserveSizes(200), { size: 8, headroom: 8 });
    assert.deepEqual(reserveSizes(1024), { size: 16, headroom: 26 });
    assert.deepEqual(reserveSizes(20_000), { size: 64, headroom: 500 });
    assert.deepEqual(reserveSizes(1_048_576), { size: 64, headroom: 26_215 });
  });
});
