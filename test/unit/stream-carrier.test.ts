import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import type { UpstreamConnection } from '../../src/upstream/connection.js';
import { replyFromObject } from '../../src/upstream/reply.js';
import { OWN_SOCKET_GRACE_MS, StreamCarrier } from '../../src/upstream/stream-carrier.js';

/** A socket to a node that answers eth_subscribe at once with an id naming the socket. */
class Socket extends EventEmitter {
  isOpen = false;
  constructor(readonly name: string) {
    super();
  }
  open(): void {
    this.isOpen = true;
    this.emit('open');
  }
  close(): void {
    this.isOpen = false;
    this.emit('close');
  }
  request(): Promise<unknown> {
    return Promise.resolve(replyFromObject({ jsonrpc: '2.0', id: 1, result: `0x${this.name}` }));
  }
}

/** A carrier whose node was up (both sockets open) and went away (both closed). */
function nodeThatWentAway(): { carrier: StreamCarrier; own: Socket; call: Socket } {
  const own = new Socket('a0');
  const call = new Socket('c0');
  const carrier = new StreamCarrier('node', own as unknown as UpstreamConnection, [call as unknown as UpstreamConnection]);
  own.open();
  call.open();
  own.close();
  call.close();
  return { carrier, own, call };
}

describe('StreamCarrier, a node coming back with a call socket first', () => {
  it('a subscribe made while the own socket is awaited waits for it, and is made there', async () => {
    const { carrier, own, call } = nodeThatWentAway();
    call.open();
    assert.equal(carrier.ready, false, 'not carried by the call socket at once');
    const subscribed = carrier.subscribe(['newHeads'], 5_000);
    setTimeout(() => own.open(), 50);
    assert.equal((await subscribed).id, '0xa0');
    carrier.close();
  });

  it('a subscribe waits for the stand-in when the own socket does not come within the grace', async () => {
    const { carrier, call } = nodeThatWentAway();
    call.open();
    const started = Date.now();
    const subscription = await carrier.subscribe(['newHeads'], 5_000);
    assert.equal(subscription.id, '0xc0');
    assert.ok(Date.now() - started >= OWN_SOCKET_GRACE_MS - 20, `waited ${Date.now() - started} ms`);
    carrier.close();
  });
});

describe('StreamCarrier, subscriptions moving while one is made', () => {
  it('a subscribe answered on the socket they left is made again where they went, not failed', async () => {
    const own = new Socket('a0');
    const call = new Socket('c0');
    const carrier = new StreamCarrier('node', own as unknown as UpstreamConnection, [call as unknown as UpstreamConnection]);
    // At start a call socket opens first and carries; their own opens a moment later.
    call.open();
    let answer: (() => void) | undefined;
    const unsubscribed: string[] = [];
    call.request = (method?: string, params?: unknown) => {
      if (method === 'eth_unsubscribe') {
        unsubscribed.push(String((params as string[])[0]));
        return Promise.resolve(replyFromObject({ jsonrpc: '2.0', id: 1, result: true }));
      }
      return new Promise((resolve) => (answer = () => resolve(replyFromObject({ jsonrpc: '2.0', id: 1, result: '0xc0' }))));
    };
    const subscribed = carrier.subscribe(['newHeads'], 5_000);
    await new Promise((resolve) => setImmediate(resolve));
    own.open();
    answer!();
    assert.equal((await subscribed).id, '0xa0', 'made on their own socket');
    assert.deepEqual(unsubscribed, ['0xc0'], 'the one made on the call socket is undone');
    carrier.close();
  });
});
