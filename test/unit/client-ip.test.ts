import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clientIpResolver, trustedEntryProblem } from '../../src/server/client-ip.js';

const xff = clientIpResolver({ trusted: ['10.0.0.0/8', '127.0.0.1', 'fd00::/8'], header: 'x-forwarded-for' });

test('client ip: no trusted proxies, the peer is the client whatever the header says', () => {
  const none = clientIpResolver({ trusted: [], header: 'x-forwarded-for' });
  assert.equal(none('127.0.0.1', '203.0.113.9'), '127.0.0.1');
});

test('client ip: a trusted peer is believed, read from the right past every trusted hop', () => {
  assert.equal(xff('10.1.2.3', '203.0.113.9'), '203.0.113.9');
  assert.equal(xff('10.1.2.3', '203.0.113.9, 10.9.9.9'), '203.0.113.9', 'a second trusted proxy is skipped');
  assert.equal(xff('127.0.0.1', '1.1.1.1, 203.0.113.9,10.0.0.7'), '203.0.113.9', 'what the client wrote itself (1.1.1.1) is not believed');
  assert.equal(xff('fd00::1', '2001:db8::5'), '2001:db8::5');
  assert.equal(xff('::ffff:10.0.0.1', '203.0.113.9'), '203.0.113.9', 'an IPv4-mapped peer matches the IPv4 range');
  assert.equal(xff('10.1.2.3', '10.0.0.5, 10.0.0.6'), '10.0.0.5', 'all trusted: the leftmost');
  assert.equal(xff('10.1.2.3', '203.0.113.9:4711, 10.0.0.6:80'), '203.0.113.9', 'ports are dropped');
  assert.equal(xff('10.1.2.3', '[2001:db8::5]:4711'), '2001:db8::5');
  assert.equal(xff('10.1.2.3', '::ffff:203.0.113.9'), '203.0.113.9', 'a client a dual-stack proxy names IPv4-mapped is its IPv4 address');
});

test('client ip: an untrusted peer, a missing header, or garbage in it', () => {
  assert.equal(xff('198.51.100.7', '203.0.113.9'), '198.51.100.7', 'an untrusted peer may not name another client');
  assert.equal(xff('10.1.2.3', undefined), '10.1.2.3');
  assert.equal(xff('10.1.2.3', 'unknown, 10.0.0.9'), '10.0.0.9', 'garbage ends the walk at the last trusted hop');
  assert.equal(xff('10.1.2.3', ''), '10.1.2.3');
  const realIp = clientIpResolver({ trusted: ['127.0.0.0/8'], header: 'x-real-ip' });
  assert.equal(realIp('127.0.0.1', '203.0.113.9'), '203.0.113.9');
});

test('client ip: the Forwarded header (RFC 7239), read from its for= parameters', () => {
  const forwarded = clientIpResolver({ trusted: ['10.0.0.0/8'], header: 'forwarded' });
  assert.equal(forwarded('10.1.2.3', 'for=203.0.113.9;proto=https;by=10.1.2.3'), '203.0.113.9');
  assert.equal(forwarded('10.1.2.3', 'for=198.51.100.1, for=203.0.113.9, for=10.0.0.6'), '203.0.113.9', 'from the right, past trusted hops');
  assert.equal(forwarded('10.1.2.3', 'For="[2001:db8:cafe::17]:4711"'), '2001:db8:cafe::17', 'quoted, bracketed, with a port; names are case-insensitive');
  assert.equal(forwarded('10.1.2.3', 'for="[2001:db8::5]"'), '2001:db8::5');
  assert.equal(forwarded('10.1.2.3', 'proto=https;for=203.0.113.9:80'), '203.0.113.9', 'for= in any position');
  assert.equal(forwarded('10.1.2.3', 'for=_hidden, for=10.0.0.6'), '10.0.0.6', 'an obfuscated node ends the walk at the last trusted hop');
  assert.equal(forwarded('10.1.2.3', 'for=unknown'), '10.1.2.3');
  assert.equal(forwarded('10.1.2.3', 'proto=https'), '10.1.2.3', 'an element without for=');
  assert.equal(forwarded('198.51.100.7', 'for=203.0.113.9'), '198.51.100.7', 'an untrusted peer is not believed');
});

test('client ip: trusted entries are addresses or CIDR ranges', () => {
  assert.equal(trustedEntryProblem('10.0.0.0/8'), undefined);
  assert.equal(trustedEntryProblem('::1'), undefined);
  assert.equal(trustedEntryProblem('2001:db8::/32'), undefined);
  assert.equal(trustedEntryProblem('10.0.0.0/33'), '"10.0.0.0/33": the prefix length must be 0 to 32');
  assert.equal(trustedEntryProblem('10.0.0.0/x'), '"10.0.0.0/x": the prefix length must be 0 to 32');
  assert.equal(trustedEntryProblem('ingress.local'), '"ingress.local" is not an IP address or CIDR range');
  assert.equal(trustedEntryProblem('10.0.0.0/8/8'), '"10.0.0.0/8/8" is not an IP address or CIDR range');
});
