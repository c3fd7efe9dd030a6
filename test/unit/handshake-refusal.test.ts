import assert from 'node:assert/strict';
import { test } from 'node:test';

import { MAX_RETRY_AFTER_MS, retryAfterMs, shownLocation } from '../../src/upstream/handshake-refusal.js';

test('Retry-After as delay-seconds or an HTTP date, capped, and nothing from what it cannot read', () => {
  const now = Date.parse('2026-12-06T12:00:00Z');
  assert.equal(retryAfterMs('120', now), 120_000);
  assert.equal(retryAfterMs(' 0 ', now), 0);
  assert.equal(retryAfterMs('Sun, 06 Dec 2026 12:00:30 GMT', now), 30_000);
  assert.equal(retryAfterMs('Sun, 06 Dec 2026 11:00:00 GMT', now), 0, 'a date past is no wait');
  assert.equal(retryAfterMs('86400', now), MAX_RETRY_AFTER_MS);
  assert.equal(retryAfterMs(undefined, now), undefined);
  assert.equal(retryAfterMs('soon', now), undefined);
  assert.equal(retryAfterMs('-5', now), undefined);
});

test("a redirect's Location is shown with the keys a provider echoes in it hidden, relative ones too", () => {
  assert.equal(shownLocation('https://new-host.example/v3/pk7f3a91?apikey=qk19d8'), 'https://new-host.example/v3/***?apikey=***');
  assert.equal(shownLocation('wss://new.example/v1'), 'wss://new.example/v1');
  assert.equal(shownLocation('/ws/2b7c9d?key=abc'), '/ws/***?key=***');
  assert.equal(shownLocation('/mainnet'), '/mainnet');
  assert.equal(shownLocation('/v3/auth?Zk9sEcretKey77'), '/v3/***?***', 'a key written alone as the query');
});
