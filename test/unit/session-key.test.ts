import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RequestInfo } from '../../src/server/front-end.js';
import { MAX_KEY_CHARS, sessionKeyOf } from '../../src/server/session-key.js';

const request = (query: string, path = '/'): RequestInfo => ({ ip: '203.0.113.9', path, query, headers: {}, proxiedIp: '' });
const byQuery = { source: 'query', name: 'session' } as const;

test('a session key comes from where the config says, else the client\'s IP', () => {
  assert.equal(sessionKeyOf(request('session=abc'), '203.0.113.9', byQuery), 'query:abc');
  assert.equal(sessionKeyOf(request('session='), '203.0.113.9', byQuery), 'ip:203.0.113.9');
  assert.equal(sessionKeyOf(request('', '/key-1/x'), '203.0.113.9', { source: 'path', name: 'session' }), 'path:key-1');
  assert.equal(sessionKeyOf(request('session=abc'), '203.0.113.9', { source: 'ip', name: 'session' }), 'ip:203.0.113.9');
});

test('a key longer than MAX_KEY_CHARS is kept as its SHA-256: the same key the same, another key another, bounded in size', () => {
  const long = 'k'.repeat(10_000);
  const key = sessionKeyOf(request(`session=${long}`), '203.0.113.9', byQuery);
  assert.match(key, /^query~sha256:[0-9a-f]{64}$/);
  // Not the key of a client that writes that hash as its key.
  assert.notEqual(sessionKeyOf(request(`session=${key.slice('query~'.length)}`), '203.0.113.9', byQuery), key);
  assert.equal(sessionKeyOf(request(`session=${long}`), '198.51.100.1', byQuery), key);
  assert.notEqual(sessionKeyOf(request(`session=${long}x`), '203.0.113.9', byQuery), key);
  const limit = 'a'.repeat(MAX_KEY_CHARS);
  assert.equal(sessionKeyOf(request(`session=${limit}`), '203.0.113.9', byQuery), `query:${limit}`);
});
