/**
 * Turns one received frame (single request or batch) into the fake node's reply text, applying
 * the 'garbage' and 'error' modes. Pure apart from running the looked-up methods.
 */
import type { FakeClient, FakeMethod } from './fake-node-methods.js';

/** What a misconfigured proxy in front of a node sends: not JSON at all. */
export const GARBAGE_FRAME = '<html><body><h1>502 Bad Gateway</h1></body></html>';

interface ErrorObject {
  code: number;
  message: string;
  data?: unknown;
}

type Reply = { jsonrpc: '2.0'; id: unknown } & ({ result: unknown } | { error: ErrorObject });

export interface AnswerInput {
  /** false when the frame was not valid JSON */
  parsed: boolean;
  message: unknown;
  mode: 'normal' | 'garbage' | 'error';
  /** undefined for HTTP */
  client: FakeClient | undefined;
  lookup: (method: string) => FakeMethod | undefined;
}

/** The reply text, or undefined when nothing is to be sent (only notifications were received). */
export async function answerMessage(input: AnswerInput): Promise<string | undefined> {
  const { parsed, message, mode } = input;
  if (mode === 'garbage') return GARBAGE_FRAME;
  if (!parsed) return JSON.stringify(errorReply(null, { code: -32700, message: 'parse error' }));
  if (!Array.isArray(message)) {
    const reply = await answerOne(message, input);
    return reply === undefined ? undefined : JSON.stringify(reply);
  }
  if (message.length === 0) return JSON.stringify(errorReply(null, { code: -32600, message: 'empty batch' }));
  const replies = await Promise.all(message.map((item) => answerOne(item, input)));
  const sent = replies.filter((r): r is Reply => r !== undefined);
  return sent.length === 0 ? undefined : JSON.stringify(sent);
}

function errorReply(id: unknown, error: ErrorObject): Reply {
  return { jsonrpc: '2.0', id, error };
}

/** Accepts FakeRpcError, plain {code, message} objects, and anything else as -32603. */
export function toErrorObject(thrown: unknown): ErrorObject {
  if (typeof thrown === 'object' && thrown !== null) {
    const { code, message, data } = thrown as { code?: unknown; message?: unknown; data?: unknown };
    if (typeof code === 'number' && Number.isInteger(code)) {
      const error: ErrorObject = { code, message: typeof message === 'string' ? message : 'error' };
      if (data !== undefined) error.data = data;
      return error;
    }
    if (typeof message === 'string') return { code: -32603, message };
  }
  return { code: -32603, message: String(thrown) };
}

async function answerOne(item: unknown, input: AnswerInput): Promise<Reply | undefined> {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) {
    return errorReply(null, { code: -32600, message: 'invalid request' });
  }
  const request = item as { id?: unknown; method?: unknown; params?: unknown };
  const id = request.id ?? null;
  // a request without an id is a notification: run it, answer nothing
  const wantsReply = 'id' in request;
  if (typeof request.method !== 'string') return errorReply(id, { code: -32600, message: 'invalid request' });
  if (input.mode === 'error') {
    return wantsReply ? errorReply(id, { code: -32603, message: 'fake node internal error' }) : undefined;
  }
  let reply: Reply;
  const method = input.lookup(request.method);
  if (method === undefined) {
    reply = errorReply(id, { code: -32601, message: `the method ${request.method} does not exist/is not available` });
  } else if (request.params !== undefined && !Array.isArray(request.params)) {
    reply = errorReply(id, { code: -32602, message: 'params must be an array' });
  } else {
    try {
      const result: unknown = await method(request.params ?? [], input.client);
      reply = { jsonrpc: '2.0', id, result: result ?? null };
    } catch (thrown) {
      reply = errorReply(id, toErrorObject(thrown));
    }
  }
  return wantsReply ? reply : undefined;
}
