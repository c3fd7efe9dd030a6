/** The bytes of one JSON-RPC request evmux sends a node, under evmux's own id. */
import { Buffer } from 'node:buffer';
import { digitCount, putBytes, putDigits } from '../jsonrpc/json-bytes.js';

const CLOSE_BRACE = 0x7d;
const ID_KEY = Buffer.from(',"id":');

/**
 * `{"jsonrpc":"2.0","method":"eth_call","params":` per method name, encoded once: the id goes last,
 * so everything before the params is one copy. Bounded: allowed names come from clients (`eth_*`
 * admits any suffix), and past the bound a name is encoded per call.
 */
const HEADS = new Map<string, Buffer>();
const MAX_HEADS = 1024;

function head(method: string): Buffer {
  let bytes = HEADS.get(method);
  if (bytes === undefined) {
    bytes = Buffer.from(`{"jsonrpc":"2.0","method":${JSON.stringify(method)},"params":`);
    if (HEADS.size < MAX_HEADS) HEADS.set(method, bytes);
  }
  return bytes;
}

/**
 * Params already written as JSON (a client's own text of them, see params-text.ts), sent as they
 * are. When every character is ASCII (`ascii`), the text's length is its byte count and it is
 * copied without encoding: `Buffer.byteLength` and a UTF-8 `Buffer#write` cost two calls into C++,
 * ~1k instructions per call (callgrind) more than the one Latin-1 copy.
 */
export class ParamsJson {
  constructor(
    readonly text: string,
    readonly ascii: boolean,
  ) {}
}

/**
 * `Buffer#latin1Write`, which every Node Buffer has but @types/node does not declare: what
 * `write(text, at, 'latin1')` calls after resolving its arguments and the encoding's name (~400
 * instructions a call, callgrind).
 */
type Latin1Writable = Buffer & { latin1Write(text: string, at: number): number };

/**
 * One request frame, written part by part into a single buffer: building it as a template string
 * first cost a chain of string pieces, their flattened copy and then the bytes, on every call.
 */
export function requestFrame(id: number, method: string, params: unknown): Buffer {
  const written = params instanceof ParamsJson ? params : undefined;
  const ascii = written?.ascii === true;
  const paramsJson = written !== undefined ? written.text : JSON.stringify(params);
  const start = head(method);
  const digits = digitCount(id);
  const frame = Buffer.allocUnsafe(start.length + (ascii ? paramsJson.length : Buffer.byteLength(paramsJson)) + ID_KEY.length + digits + 1);
  let at = putBytes(frame, 0, start);
  at += ascii ? (frame as Latin1Writable).latin1Write(paramsJson, at) : frame.write(paramsJson, at);
  at = putBytes(frame, at, ID_KEY);
  at = putDigits(frame, at, id, digits);
  frame[at] = CLOSE_BRACE;
  return frame;
}
