import assert from 'node:assert/strict';
import { closeSync, readSync } from 'node:fs';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { StdoutWriter } from '../../src/stdout-writer.js';
import { fullFifo } from '../support/full-fifo.js';

/** A full FIFO whose writer closes when the test ends. */
function fullPipe(t: TestContext): { reader: number; writer: number } {
  const pipe = fullFifo(t);
  t.after(() => closeSync(pipe.writer));
  return pipe;
}

/** Everything the pipe holds now. */
function readAll(reader: number): string {
  const chunks: Buffer[] = [];
  const buffer = Buffer.alloc(65_536);
  for (;;) {
    let read: number;
    try {
      read = readSync(reader, buffer);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EAGAIN') break;
      throw error;
    }
    if (read === 0) break;
    chunks.push(Buffer.from(buffer.subarray(0, read)));
  }
  return Buffer.concat(chunks).toString();
}

test('behind a full pipe, lines wait up to the limit and later ones are dropped; once the reader reads, the waiting lines come in order, then a line counting the dropped', async (t) => {
  const { reader, writer } = fullPipe(t);
  const out = new StdoutWriter(writer, 100);
  for (let i = 0; i < 60; i++) assert.equal(out.write(`${String(i).padStart(3, '0')}\n`), true);
  await sleep(50);
  assert.match(readAll(reader), /^\.+$/, 'only the filler was in the pipe');
  await sleep(250); // the writer tries a full pipe again every 100 ms
  const lines = readAll(reader).trimEnd().split('\n');
  assert.deepEqual(lines.slice(0, 25), Array.from({ length: 25 }, (_, i) => String(i).padStart(3, '0')));
  assert.equal(lines.length, 26);
  const dropped = JSON.parse(lines[25]!) as { level: number; dropped: number; msg: string };
  assert.equal(dropped.level, 40);
  assert.equal(dropped.dropped, 35);
  out.write('next\n');
  await sleep(20);
  assert.equal(readAll(reader), 'next\n', 'and lines go out as they come again');
});

test('lines written in one loop turn go out together, in order, and flush() writes what waits at once', async (t) => {
  const { reader, writer } = fullPipe(t);
  readAll(reader);
  const out = new StdoutWriter(writer);
  out.write('a\n');
  out.write('b\n');
  assert.equal(readAll(reader), '', 'nothing written within the turn');
  out.flush();
  assert.equal(readAll(reader), 'a\nb\n');
});
