import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { UpstreamConnection } from '../../src/upstream/connection.js';
import { IsolatedSocket } from '../../src/upstream/isolated-socket.js';
import { ISOLATION_MS } from '../../src/upstream/oversized-clients.js';
import type { ReplySink, UpstreamReply } from '../../src/upstream/reply.js';

/** The little of a connection the isolated socket uses. */
class StubConnection extends EventEmitter {
  isOpen = false;
  inFlight = 0;
  started = 0;
  closed = 0;
  readonly sent: string[] = [];
  start(): void {
    this.started++;
  }
  close(): void {
    this.closed++;
    this.isOpen = false;
  }
  send(method: string): void {
    this.sent.push(method);
  }
}

const sink = (outcomes: string[]): ReplySink => ({
  resolve: (reply: UpstreamReply) => outcomes.push(`answer ${String(reply)}`),
  reject: (error: unknown) => outcomes.push(`failed ${(error as Error).message}`),
});
/** Where a call goes when the socket of its own cannot take it: the shared sockets. */
const shared = (outcomes: string[]) => (leftMs: number): void => void outcomes.push(`shared ${leftMs > 0 ? 'in time' : 'late'}`);

/** An isolated socket over stub connections, and the connections it made. */
function isolatedSocket(): { socket: IsolatedSocket; made: StubConnection[] } {
  const made: StubConnection[] = [];
  const socket = new IsolatedSocket(() => {
    const connection = new StubConnection();
    made.push(connection);
    return connection as unknown as UpstreamConnection;
  }, pino({ level: 'silent' }));
  return { socket, made };
}

describe('IsolatedSocket', () => {
  it('is made at the first call, which waits for it to open; closed once unused for ISOLATION_MS', async () => {
    const { socket, made } = isolatedSocket();
    const outcomes: string[] = [];
    socket.send('eth_getLogs', [], 5000, sink(outcomes), shared(outcomes));
    assert.equal(made.length, 1);
    assert.equal(made[0]!.started, 1);
    assert.deepEqual(made[0]!.sent, [], 'not open yet: the call waits');
    made[0]!.isOpen = true;
    made[0]!.emit('open');
    assert.deepEqual(made[0]!.sent, ['eth_getLogs']);
    socket.send('eth_call', [], 5000, sink(outcomes), shared(outcomes));
    assert.deepEqual(made[0]!.sent, ['eth_getLogs', 'eth_call'], 'open: at once');
    assert.equal(socket.state, 'open');

    const usedAt = performance.now();
    socket.closeIfIdle(usedAt + ISOLATION_MS / 2);
    assert.equal(made[0]!.closed, 0, 'used lately');
    made[0]!.inFlight = 1;
    socket.closeIfIdle(usedAt + ISOLATION_MS + 1000);
    assert.equal(made[0]!.closed, 0, 'a call in flight');
    made[0]!.inFlight = 0;
    socket.closeIfIdle(usedAt + ISOLATION_MS + 1000);
    assert.equal(made[0]!.closed, 1);
    assert.equal(socket.state, null);
    socket.send('eth_call', [], 5000, sink(outcomes), shared(outcomes));
    assert.equal(made.length, 2, 'made anew when needed again');
    socket.close();
    assert.deepEqual(outcomes, ['shared in time'], 'the call waiting for it goes on the shared sockets when it is closed');
  });

  it('a call goes on the shared sockets when the socket does not open within its wait', async () => {
    const { socket } = isolatedSocket();
    const outcomes: string[] = [];
    socket.send('eth_call', [], 30, sink(outcomes), shared(outcomes));
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.deepEqual(outcomes, ['shared in time']);
    socket.close();
  });

  it('a node that refuses the socket (a cap on connections) has the calls go on the shared sockets for ISOLATION_MS, not asked again meanwhile', () => {
    const { socket, made } = isolatedSocket();
    const outcomes: string[] = [];
    socket.send('eth_getLogs', [], 5000, sink(outcomes), shared(outcomes));
    assert.equal(socket.state, 'opening');
    made[0]!.emit('failed', 'Unexpected server response: 429');
    assert.equal(socket.state, 'refused');
    assert.deepEqual(outcomes, ['shared in time'], 'the waiting call goes on at once');
    assert.equal(made[0]!.closed, 1, 'not connected to again and again');
    socket.send('eth_call', [], 5000, sink(outcomes), shared(outcomes));
    assert.equal(made.length, 1, 'no new socket made meanwhile');
    assert.deepEqual(outcomes, ['shared in time', 'shared in time']);
    socket.close();
  });
});
