import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ISOLATION_MS, OversizedClients } from '../../src/upstream/oversized-clients.js';

describe('OversizedClients', () => {
  it('holds a client for ISOLATION_MS after its last answer over the limit', () => {
    const clients = new OversizedClients();
    assert.equal(clients.active(0), false);
    clients.note('ws:1', 0);
    assert.equal(clients.active(1), true);
    assert.equal(clients.has('ws:1', ISOLATION_MS), true);
    assert.equal(clients.has('ws:2', 1), false);
    clients.note('ws:1', 30_000);
    assert.equal(clients.has('ws:1', ISOLATION_MS + 1), true, 'a later answer holds it longer');
    assert.equal(clients.has('ws:1', 30_000 + ISOLATION_MS + 1), false);
    assert.equal(clients.active(30_000 + ISOLATION_MS + 1), false, 'none left: the check on every call is one look');
  });

  it('forgets the oldest past 10,000 clients', () => {
    const clients = new OversizedClients();
    for (let i = 0; i <= 10_000; i++) clients.note(`ip:${i}`, 1);
    assert.equal(clients.has('ip:0', 2), false);
    assert.equal(clients.has('ip:1', 2), true);
    assert.equal(clients.has('ip:10000', 2), true);
  });
});
