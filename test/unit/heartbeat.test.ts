import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { Heartbeat } from '../../src/upstream/heartbeat.js';

/** A socket whose progress is a counter of bytes received: busy since a mark when it moved. */
class FakeSocket {
  open = true;
  pings = 0;
  received = 0;
  released: number[] = [];
  lostFor: string | undefined;
  readonly host = {
    open: () => this.open,
    ping: () => void this.pings++,
    progressMark: () => this.received,
    busySince: (mark: number) => this.received > mark,
    renewed: () => this.received,
    releaseMark: (mark: number) => void this.released.push(mark),
    lost: (reason: string) => void (this.lostFor = reason),
  };
}

describe('Heartbeat', async () => {
  let socket: FakeSocket;
  let heartbeat: Heartbeat<number>;
  /** Advance the mocked clock ms by ms, letting the (real) immediates each timer queues (afterReads) run. */
  const tick = async (ms: number): Promise<void> => {
    for (let i = 0; i < ms; i++) {
      mock.timers.tick(1);
      await new Promise((resolve) => setImmediate(resolve));
    }
  };

  beforeEach(() => {
    mock.timers.enable({ apis: ['setInterval', 'setTimeout'] });
    socket = new FakeSocket();
    heartbeat = new Heartbeat(socket.host, 100, 50);
  });
  afterEach(() => {
    heartbeat.stop();
    mock.timers.reset();
  });

  it('pings every interval, and a pong in time keeps the socket', async () => {
    await tick(100);
    for (let round = 0; round < 3; round++) {
      await tick(20);
      heartbeat.pong();
      await tick(80);
    }
    assert.equal(socket.pings, 4);
    assert.equal(socket.lostFor, undefined);
    assert.deepEqual(socket.released, [0, 0, 0], 'each ping’s mark released at its pong');
    await tick(49);
    assert.equal(socket.lostFor, undefined);
    await tick(1);
    assert.equal(socket.lostFor, 'no pong within 50 ms (heartbeat.timeoutMs)', 'the fourth ping had none');
  });

  it('gives the socket up when no pong comes within the timeout', async () => {
    await tick(100);
    await tick(49);
    assert.equal(socket.lostFor, undefined);
    await tick(1);
    assert.equal(socket.lostFor, 'no pong within 50 ms (heartbeat.timeoutMs)');
  });

  it('waits on while the node is busy sending: the pong is behind what arrives', async () => {
    await tick(100);
    await tick(40);
    socket.received += 1000;
    await tick(20);
    assert.equal(socket.lostFor, undefined, 'busy since the ping: waited again');
    await tick(60);
    assert.equal(socket.lostFor, 'no pong within 50 ms (heartbeat.timeoutMs)', 'quiet for a whole timeout after that');
  });

  it('one ping outstanding at a time: later pings do not push its deadline back', async () => {
    heartbeat.stop();
    heartbeat = new Heartbeat(socket.host, 30, 50);
    await tick(30);
    await tick(49);
    assert.equal(socket.pings, 2);
    assert.equal(socket.lostFor, undefined);
    await tick(1);
    assert.equal(socket.lostFor, 'no pong within 50 ms (heartbeat.timeoutMs)', 'timed from the first ping');
  });

  it('leaves a closing socket alone: no ping, no wait', async () => {
    socket.open = false;
    await tick(500);
    assert.deepEqual([socket.pings, socket.lostFor], [0, undefined]);
  });
});
