/** The bytes of one JSON-RPC request evmux sends a node, under evmux's own id. */
import { Buffer } from 'node:buffer';
import { digitCount, ID_PREFIX, putBytes, putDigits } from '../jsonrpc/json-bytes.js';

const CLOSE_BRACE = 0x7d;

/**
 * `,"method":"eth_call","params":` per method name, encoded once. Bounded: allowed names come from
 * clients (`eth_*` admits any suffix), and past the bound a name is encoded per call.
 */
const METHOD_PARTS = new Map<string, Buffer>();
const MAX_METHOD_PARTS = 1024;

function methodPart(method: string): Buffer {
  let part = METHOD_PARTS.get(method);
  if (part === undefined) {
    part = Buffer.from(`,"method":${JSON.stringify(method)},"params":`);
    if (METHOD_PARTS.size < MAX_METHOD_PARTS) METHOD_PARTS.set(method, part);
  }
  return part;
}

/** Params already written as JSON (a client's own text of them, see params-text.ts), sent as they are. */
export class ParamsJson {
  constructor(readonly text: string) {}
}

/**
 * One request frame, written part by part into a single buffer: building it as a template string
 * first cost a chain of string pieces, their flattened copy and then the bytes, on every call.
 */
export function requestFrame(id: number, method: string, params: unknown): Buffer {
  const paramsJson = params instanceof ParamsJson ? params.text : JSON.stringify(params);
  const middle = methodPart(method);
  const digits = digitCount(id);
  const frame = Buffer.allocUnsafe(ID_PREFIX.length + digits + middle.length + Buffer.byteLength(paramsJson) + 1);
  let at = putBytes(frame, 0, ID_PREFIX);
  at = putDigits(frame, at, id, digits);
  at = putBytes(frame, at, middle);
  at += frame.write(paramsJson, at);
  frame[at] = CLOSE_BRACE;
  return frame;
}
