/**
 * The frame reader between a node's socket and ws's reader: random messages around the limit, in one
 * frame or in fragments with pings between them, cut into random chunks (headers split included),
 * go through it into a real ws Receiver. Every message under the limit must come out whole and in
 * order, every ping too, and every message over it be reported once with its first bytes, then
 * once with its last.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventEmitter } from 'node:events';
import * as ws from 'ws';
import { EDGE_BYTES, FrameReader } from '../../src/upstream/frame-reader.js';

const LIMIT = 4096;

/** ws's frame reader, which ws exports but its types do not declare. */
const { Receiver } = ws as unknown as {
  Receiver: new (options: { isServer: boolean; maxPayload: number; skipUTF8Validation: boolean }) => EventEmitter & { write(chunk: Buffer): boolean };
};

/** A deterministic generator (xorshift32), so a failing seed can be run again. */
function random(seed: number): (below: number) => number {
  let state = seed || 1;
  return (below) => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) % below;
  };
}

/** A server's frame (unmasked): `opcode` 0 continues a message. */
function frame(opcode: number, fin: boolean, payload: Buffer): Buffer {
  const first = (fin ? 0x80 : 0) | opcode;
  if (payload.length < 126) return Buffer.concat([Buffer.from([first, payload.length]), payload]);
  if (payload.length < 65_536) {
    const header = Buffer.from([first, 126, 0, 0]);
    header.writeUInt16BE(payload.length, 2);
    return Buffer.concat([header, payload]);
  }
  const header = Buffer.alloc(10);
  header[0] = first;
  header[1] = 127;
  header.writeUInt32BE(payload.length, 6);
  return Buffer.concat([header, payload]);
}

interface Sent {
  kind: 'message' | 'ping';
  bytes: Buffer;
}

function scenario(seed: number): { wire: Buffer; sent: Sent[]; chunks: (wire: Buffer) => Buffer[] } {
  const draw = random(seed);
  const sent: Sent[] = [];
  const frames: Buffer[] = [];
  for (let m = 0; m < 40; m++) {
    if (draw(5) === 0) {
      const bytes = Buffer.from(`ping ${m}`);
      sent.push({ kind: 'ping', bytes });
      frames.push(frame(9, true, bytes));
      continue;
    }
    const size = [draw(200), LIMIT - 2 + draw(5), LIMIT + draw(3 * LIMIT), draw(70_000)][draw(4)]!;
    const bytes = Buffer.alloc(size);
    for (let i = 0; i < size; i++) bytes[i] = 32 + ((i * 7 + m) % 90);
    sent.push({ kind: 'message', bytes });
    const pieces = draw(3) === 0 ? 1 : 1 + draw(8);
    // Text, which the reader hands over itself when it is whole; binary, which ws reads.
    const opcode = draw(5) === 0 ? 2 : 1;
    let offset = 0;
    for (let p = 0; p < pieces; p++) {
      const end = p === pieces - 1 ? size : Math.min(size, offset + draw(size + 1));
      frames.push(frame(p === 0 ? opcode : 0, p === pieces - 1, bytes.subarray(offset, end)));
      offset = end;
      if (p < pieces - 1 && draw(3) === 0) {
        const ping = Buffer.from(`between ${m}.${p}`);
        sent.push({ kind: 'ping', bytes: ping });
        frames.push(frame(9, true, ping));
      }
    }
  }
  const chunks = (wire: Buffer): Buffer[] => {
    const out: Buffer[] = [];
    // Half the time whole frames, a few to a chunk, as a socket reads small answers.
    if (seed % 2 === 0) {
      for (let at = 0; at < frames.length; ) {
        const count = 1 + draw(4);
        out.push(Buffer.concat(frames.slice(at, at + count)));
        at += count;
      }
      return out;
    }
    for (let at = 0; at < wire.length; ) {
      const length = 1 + [draw(3), draw(20), draw(3000), draw(100_000)][draw(4)]!;
      out.push(wire.subarray(at, at + length));
      at += length;
    }
    return out;
  };
  return { wire: Buffer.concat(frames), sent, chunks };
}

test('messages under the limit come out whole and in order, those over it are reported with their first and last bytes', () => {
  for (let seed = 1; seed <= 200; seed++) {
    const { wire, sent, chunks } = scenario(seed);
    const receiver = new Receiver({ isServer: false, maxPayload: LIMIT, skipUTF8Validation: true });
    const out: Array<Sent | { kind: 'skipped'; head: Buffer; tail: Buffer }> = [];
    let error: Error | undefined;
    let head: Buffer | undefined;
    const reader = new FrameReader(LIMIT, (bytes) => receiver.write(bytes), {
      message: (text) => out.push({ kind: 'message', bytes: Buffer.from(text) }),
      started: (bytes) => {
        assert.equal(head, undefined, `seed ${seed}: started once per message`);
        head = Buffer.from(bytes);
      },
      skipped: (tail) => {
        assert.ok(head !== undefined, `seed ${seed}: started before skipped`);
        out.push({ kind: 'skipped', head, tail: Buffer.from(tail) });
        head = undefined;
      },
    });
    receiver.on('message', (data: Buffer) => {
      if (!reader.truncated()) out.push({ kind: 'message', bytes: Buffer.from(data) });
    });
    receiver.on('ping', (data: Buffer) => out.push({ kind: 'ping', bytes: Buffer.from(data) }));
    receiver.on('error', (e: Error) => (error = e));
    for (const chunk of chunks(wire)) reader.write(chunk);
    assert.equal(error, undefined, `seed ${seed}: ws read everything it was given`);
    // Pings between the fragments of a message come before it, as ws emits them.
    const expected = [...sent].sort((a, b) => order(sent, a) - order(sent, b));
    assert.equal(out.length, expected.length, `seed ${seed}: one event per message and ping`);
    out.forEach((got, i) => {
      const want = expected[i]!;
      if (got.kind === 'skipped') {
        assert.equal(want.kind, 'message', `seed ${seed} #${i}`);
        assert.ok(want.bytes.length > LIMIT, `seed ${seed} #${i}: only a message over the limit is skipped`);
        assert.deepEqual(got.head, want.bytes.subarray(0, EDGE_BYTES), `seed ${seed} #${i}: its head`);
        assert.deepEqual(got.tail, want.bytes.subarray(want.bytes.length - EDGE_BYTES), `seed ${seed} #${i}: its tail`);
        return;
      }
      assert.equal(got.kind, want.kind, `seed ${seed} #${i}`);
      assert.ok(got.bytes.equals(want.bytes), `seed ${seed} #${i}: ${got.kind} of ${got.bytes.length} bytes, sent ${want.bytes.length}`);
    });
  }
});

/** Where an event lands: a message at its last fragment, so pings sent between its fragments come first. */
function order(sent: Sent[], item: Sent): number {
  const index = sent.indexOf(item);
  if (item.kind === 'ping') return index;
  // A message's pings between fragments follow it in `sent`: it lands after the last of them.
  let last = index;
  while (sent[last + 1]?.kind === 'ping' && sent[last + 1]!.bytes.toString().startsWith('between')) last++;
  return last + 0.5;
}

test('a skipped message tells its head as soon as it is in, before the rest arrives, and its tail at its end', () => {
  const events: string[] = [];
  const reader = new FrameReader(10, () => true, {
    message: () => events.push('message'),
    started: (head) => events.push(`started ${head.toString()}`),
    skipped: (tail) => events.push(`skipped ${tail.toString()}`),
  });
  const payload = Buffer.from(`{"jsonrpc":"2.0","id":7,"result":"${'x'.repeat(300)}"}`);
  const wire = frame(1, true, payload);
  reader.write(wire.subarray(0, 4 + EDGE_BYTES));
  assert.deepEqual(events, [`started ${payload.subarray(0, EDGE_BYTES).toString()}`], 'its first EDGE_BYTES in: started');
  for (let at = 4 + EDGE_BYTES; at < wire.length; at += 7) reader.write(wire.subarray(at, at + 7));
  assert.deepEqual(events.slice(1), [`skipped ${payload.subarray(payload.length - EDGE_BYTES).toString()}`]);
});

test('a message that passes the limit in a later fragment tells its head when that fragment starts', () => {
  const events: string[] = [];
  const passed: Buffer[] = [];
  const reader = new FrameReader(300, (bytes) => passed.push(Buffer.from(bytes)) > 0, {
    message: () => events.push('message'),
    started: (head) => events.push(`started ${head.length}`),
    skipped: (tail) => events.push(`skipped ${tail.length}`),
  });
  const payload = Buffer.from(`{"jsonrpc":"2.0","id":7,"result":"${'x'.repeat(500)}"}`);
  const first = frame(1, false, payload.subarray(0, 200));
  const second = frame(0, true, payload.subarray(200));
  reader.write(Buffer.concat([first, second.subarray(0, 10)]));
  assert.deepEqual(events, [`started ${EDGE_BYTES}`], 'the call can fail before the rest arrives');
  assert.deepEqual(Buffer.concat(passed), Buffer.concat([first, Buffer.from([0x80, 0])]), 'the first fragment, then an empty final one');
  reader.write(second.subarray(10));
  assert.deepEqual(events, [`started ${EDGE_BYTES}`, `skipped ${EDGE_BYTES}`]);
});
