import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MethodTimeouts } from '../../src/router/method-timeouts.js';

describe('MethodTimeouts', () => {
  const timeouts = new MethodTimeouts({ requestTimeoutMs: 5000, retry: { deadlineMs: 10_000 } as never, methods: { timeoutMs: { eth_getLogs: 30_000 } } as never });

  it('gives a method of its own its timeout, and a deadline stretched to fit one try of it', () => {
    assert.equal(timeouts.timeoutOf('eth_call'), 5000);
    assert.equal(timeouts.deadlineOf('eth_call'), 10_000);
    assert.equal(timeouts.timeoutOf('eth_getLogs'), 30_000);
    assert.equal(timeouts.deadlineOf('eth_getLogs'), 30_000);
  });

  it('names the settings that bound a call, with their values', () => {
    assert.equal(timeouts.limitsOf('eth_call'), 'requestTimeoutMs (5000 ms) per try, retry.deadlineMs (10000 ms) in all');
    assert.equal(timeouts.limitsOf('eth_getLogs'), 'methods.timeoutMs.eth_getLogs (30000 ms) per try and in all');
    const short = new MethodTimeouts({ requestTimeoutMs: 5000, retry: { deadlineMs: 10_000 } as never, methods: { timeoutMs: { eth_call: 2000 } } as never });
    assert.equal(short.limitsOf('eth_call'), 'methods.timeoutMs.eth_call (2000 ms) per try, retry.deadlineMs (10000 ms) in all');
  });
});
