import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BatchAnswer, ClientCall, type FrameAnswerTarget } from '../../src/jsonrpc/client-call.js';
import { UpstreamUnavailableError } from '../../src/jsonrpc/errors.js';
import { IdText } from '../../src/jsonrpc/request-id.js';
import { noTelemetry } from '../../src/telemetry.js';
import { parseUpstreamFrame, resultReply } from '../../src/upstream/reply.js';

class Target implements FrameAnswerTarget {
  inFlight = 0;
  held = undefined;
  closed = false;
  readonly answers: Array<{ response: string | undefined; after: number }> = [];

  answer(response: Buffer | undefined, after: ReadonlyArray<() => void>): void {
    this.answers.push({ response: response?.toString('utf8'), after: after.length });
  }
}

test('a call answers with the node bytes behind the caller id, any id', () => {
  const target = new Target();
  const call = new ClientCall(target, 'ключ-7', true, undefined, 0, noTelemetry);
  assert.equal(target.inFlight, 1);
  call.resolve(resultReply({ a: 1 }));
  assert.equal(target.inFlight, 0);
  assert.deepEqual(target.answers, [{ response: '{"jsonrpc":"2.0","id":"ключ-7","result":{"a":1}}', after: 0 }]);
  assert.deepEqual(JSON.parse(target.answers[0]!.response!), { jsonrpc: '2.0', id: 'ключ-7', result: { a: 1 } });
});

test('only the first outcome of a call counts', () => {
  const target = new Target();
  const call = new ClientCall(target, 1, true, undefined, 0, noTelemetry);
  call.reject(new UpstreamUnavailableError('no upstream available'));
  call.resolve(resultReply('late'));
  assert.equal(target.inFlight, 0);
  assert.equal(target.answers.length, 1);
  assert.match(target.answers[0]!.response!, /"error":\{"code":-32\d+,"message":"no upstream available"/);
});

test('an error to a client that left is neither built nor counted', () => {
  const counted: number[] = [];
  const telemetry = { ...noTelemetry, clientError: (code: number) => counted.push(code) };
  const target = new Target();
  const alone = new ClientCall(target, 1, true, undefined, 0, telemetry);
  const batch = new BatchAnswer(target, 2, Infinity);
  const inBatch = [new ClientCall(target, 2, true, batch, 0, telemetry), new ClientCall(target, 3, true, batch, 1, telemetry)];
  target.closed = true;
  alone.reject(new UpstreamUnavailableError('no upstream available'));
  for (const call of inBatch) call.reject(new UpstreamUnavailableError('no upstream available'));
  assert.equal(target.inFlight, 0);
  assert.deepEqual(counted, []);
  assert.deepEqual(target.answers, [
    { response: undefined, after: 0 },
    { response: undefined, after: 0 },
  ]);
  target.closed = false;
  new ClientCall(target, 4, true, undefined, 0, telemetry).reject(new UpstreamUnavailableError('no upstream available'));
  assert.equal(counted.length, 1);
});

test('a notification settles without an answer of its own', () => {
  const target = new Target();
  new ClientCall(target, null, false, undefined, 0, noTelemetry).resolve(resultReply(true));
  assert.deepEqual(target.answers, [{ response: undefined, after: 0 }]);
});

test('a batch answers once, in request order, leaving out notifications, whatever order calls settle in', () => {
  const target = new Target();
  const batch = new BatchAnswer(target, 3, Infinity);
  const first = new ClientCall(target, 1, true, batch, 0, noTelemetry);
  const notification = new ClientCall(target, null, false, batch, 1, noTelemetry);
  const third = new ClientCall(target, 3, true, batch, 2, noTelemetry);
  third.after = () => {};
  third.resolve(resultReply('0x3'));
  notification.resolve(resultReply(true));
  assert.equal(target.answers.length, 0);
  first.resolve(resultReply('0x1'));
  assert.equal(target.inFlight, 0);
  assert.equal(target.answers.length, 1);
  assert.deepEqual(JSON.parse(target.answers[0]!.response!), [
    { jsonrpc: '2.0', id: 1, result: '0x1' },
    { jsonrpc: '2.0', id: 3, result: '0x3' },
  ]);
  assert.equal(target.answers[0]!.after, 1);
});

test('a batch of notifications only has no answer', () => {
  const target = new Target();
  const batch = new BatchAnswer(target, 2, Infinity);
  new ClientCall(target, null, false, batch, 0, noTelemetry).resolve(resultReply(1));
  new ClientCall(target, null, false, batch, 1, noTelemetry).reject(new Error('boom'));
  assert.deepEqual(target.answers, [{ response: undefined, after: 0 }]);
});

test('a batch holds its answers to its byte limit: an answer that would pass it is replaced by -32005 under its id', () => {
  const target = new Target();
  const one = '{"jsonrpc":"2.0","id":1,"result":"0x1111"}'.length;
  const batch = new BatchAnswer(target, 3, one * 2);
  const calls = [1, 2, 3].map((id, index) => new ClientCall(target, id, true, batch, index, noTelemetry));
  calls[2]!.resolve(resultReply('0x3333'));
  calls[0]!.resolve(resultReply('0x1111'));
  calls[1]!.resolve(resultReply('0x2222'));
  const answers = JSON.parse(target.answers[0]!.response!) as Array<Record<string, unknown>>;
  assert.deepEqual(answers.slice(0, 1), [{ jsonrpc: '2.0', id: 1, result: '0x1111' }]);
  assert.deepEqual(answers[1], {
    jsonrpc: '2.0',
    id: 2,
    error: { code: -32005, message: `this batch's answer would pass this gateway's limit of ${one * 2} bytes (limits.maxAnswerBytes); ask in smaller batches` },
  });
  assert.deepEqual(answers[2], { jsonrpc: '2.0', id: 3, result: '0x3333' }, 'the ones that settled first fit');
});

test('answers carry the caller id exactly as JSON has it: integers of any length, negative, fractional, string, null', () => {
  for (const id of [0, 7, 10, 12_345, Number.MAX_SAFE_INTEGER, 2 ** 53 + 2, -3, 1.5, 1e21, '', 'a"b\\c', null]) {
    const target = new Target();
    new ClientCall(target, id, true, undefined, 0, noTelemetry).resolve(resultReply('0x1'));
    assert.equal(target.answers[0]!.response, `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":"0x1"}`, String(id));
  }
});

test("an id kept as the caller's text is written as that text, in results and errors", () => {
  const target = new Target();
  new ClientCall(target, new IdText('12345678901234567890'), true, undefined, 0, noTelemetry).resolve(resultReply('0x1'));
  new ClientCall(target, new IdText('1e400'), true, undefined, 0, noTelemetry).reject(new UpstreamUnavailableError('no upstream available'));
  assert.equal(target.answers[0]!.response, '{"jsonrpc":"2.0","id":12345678901234567890,"result":"0x1"}');
  assert.match(target.answers[1]!.response!, /^\{"jsonrpc":"2\.0","id":1e400,"error":\{"code":-32\d+,"message":"no upstream available"/);

  const frame = Buffer.from('{"jsonrpc":"2.0","id":123456789012345678901234,"result":"0x2"}');
  new ClientCall(target, new IdText('98765432109876543210'), true, undefined, 0, noTelemetry).resolve(parseUpstreamFrame(frame).reply!);
  assert.equal(target.answers[2]!.response, '{"jsonrpc":"2.0","id":98765432109876543210,"result":"0x2"}');
});

test('a large result is copied whole behind the id', () => {
  const target = new Target();
  const big = 'ab'.repeat(50_000);
  new ClientCall(target, 9, true, undefined, 0, noTelemetry).resolve(resultReply(big));
  assert.deepEqual(JSON.parse(target.answers[0]!.response!), { jsonrpc: '2.0', id: 9, result: big });
});

test("a numeric caller id no longer than the node's is written over the node's id in the received frame", () => {
  const answers: Buffer[] = [];
  const target: FrameAnswerTarget = { inFlight: 0, held: undefined, closed: false, answer: (response) => void answers.push(response!) };
  const received = (): Buffer => Buffer.from('{"jsonrpc":"2.0","id":12345,"result":{"n":"0x1"}}');
  const answerTo = (id: number | string): { frame: Buffer; response: Buffer } => {
    const frame = received();
    const { reply } = parseUpstreamFrame(frame);
    new ClientCall(target, id, true, undefined, 0, noTelemetry).resolve(reply!);
    return { frame, response: answers.at(-1)! };
  };
  const sameBytes = (a: Buffer, b: Buffer): boolean => a.buffer === b.buffer && a.byteOffset === b.byteOffset && a.length === b.length;

  for (const id of [0, 7, 4321, 99999]) {
    const { frame, response } = answerTo(id);
    assert.ok(sameBytes(response, frame), `id ${id}: the frame itself is the answer`);
    assert.deepEqual(JSON.parse(response.toString('utf8')), { jsonrpc: '2.0', id, result: { n: '0x1' } });
  }
  assert.equal(answerTo(7).response.toString('utf8'), '{"jsonrpc":"2.0","id":    7,"result":{"n":"0x1"}}');

  for (const id of [123456, 'abc']) {
    const { frame, response } = answerTo(id);
    assert.ok(!sameBytes(response, frame), `id ${JSON.stringify(id)}: a new buffer`);
    assert.equal(frame.toString('utf8'), received().toString('utf8'), 'the received frame is left as it was');
    assert.deepEqual(JSON.parse(response.toString('utf8')), { jsonrpc: '2.0', id, result: { n: '0x1' } });
  }

  const error = Buffer.from('{"jsonrpc":"2.0","id":88,"error":{"code":-32000,"message":"header not found"}}');
  new ClientCall(target, 5, true, undefined, 0, noTelemetry).resolve(parseUpstreamFrame(error).reply!);
  assert.deepEqual(JSON.parse(answers.at(-1)!.toString('utf8')), { jsonrpc: '2.0', id: 5, error: { code: -32000, message: 'header not found' } });
});
