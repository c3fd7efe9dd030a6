/** The bytes of one JSON-RPC request evmux sends a node, under evmux's own id. */
import { Buffer } from 'node:buffer';

const FRAME_START = Buffer.from('{"jsonrpc":"2.0","id":');
const METHOD_KEY = Buffer.from(',"method":');
const PARAMS_KEY = Buffer.from(',"params":');
const CLOSE_BRACE = 0x7d;
const ZERO = 0x30;

/**
 * One request frame, written part by part into a single buffer: building it as a template string
 * first cost a chain of string pieces, their flattened copy and then the bytes, on every call.
 */
export function requestFrame(id: number, method: string, params: unknown): Buffer {
  const methodJson = JSON.stringify(method);
  const paramsJson = JSON.stringify(params);
  let digits = 1;
  for (let rest = id; rest >= 10; rest = Math.floor(rest / 10)) digits++;
  const size = FRAME_START.length + digits + METHOD_KEY.length + Buffer.byteLength(methodJson) + PARAMS_KEY.length + Buffer.byteLength(paramsJson) + 1;
  const frame = Buffer.allocUnsafe(size);
  let at = FRAME_START.copy(frame, 0);
  for (let k = at + digits - 1, rest = id; k >= at; k--, rest = Math.floor(rest / 10)) frame[k] = ZERO + (rest % 10);
  at += digits;
  at += METHOD_KEY.copy(frame, at);
  at += frame.write(methodJson, at);
  at += PARAMS_KEY.copy(frame, at);
  at += frame.write(paramsJson, at);
  frame[at] = CLOSE_BRACE;
  return frame;
}
