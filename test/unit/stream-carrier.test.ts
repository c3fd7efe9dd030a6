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
