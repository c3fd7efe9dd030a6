import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { baselineDisturbed, type PeerSummary } from '../../bench/suite-calls.js';

const peer = (p99Us: number): PeerSummary => ({ runs: [], rps: 5000, p50Us: 40, p99Us, errors: 0, peerCpuUsPerRequest: 10, peerCpuPct: 5 });

describe('bench: is a latency round\'s baseline valid', () => {
  it('accepts a round where direct is the fastest', () => {
    assert.equal(baselineDisturbed({ direct: peer(70), nginx: peer(95), floor: peer(130), evmux: peer(150) }), false);
  });

  it('rejects a round where direct is slower than any proxy in front of the same node', () => {
    assert.equal(baselineDisturbed({ direct: peer(219.5), nginx: peer(95.1), floor: peer(105.7), evmux: peer(135.7) }), true);
    assert.equal(baselineDisturbed({ direct: peer(160), nginx: peer(120), evmux: peer(200) }), true);
  });

  it('has nothing to judge without direct or without a proxy', () => {
    assert.equal(baselineDisturbed({ evmux: peer(150) }), false);
    assert.equal(baselineDisturbed({ direct: peer(300) }), false);
  });
});
