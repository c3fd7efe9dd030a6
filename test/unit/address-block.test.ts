import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addressBlock } from '../../src/server/address-block.js';

test('an IPv6 address counts as its prefix, written short with the length', () => {
  assert.equal(addressBlock('2001:db8:1:2:3:4:5:6', 64), '2001:db8:1:2::/64');
  assert.equal(addressBlock('2001:db8:1:2ff:3:4:5:6', 56), '2001:db8:1:200::/56');
  assert.equal(addressBlock('2001:db8:1:2ff:3:4:5:6', 60), '2001:db8:1:2f0::/60');
  assert.equal(addressBlock('2001:db8:abcd:1::1', 48), '2001:db8:abcd::/48');
  assert.equal(addressBlock('::1', 64), '::/64');
  assert.equal(addressBlock('ffff:ffff::', 1), '8000::/1');
  assert.equal(addressBlock('2001:db8::7', 127), '2001:db8::6/127');
});

test('at 128 an IPv6 address counts on its own; IPv4 and what is not an address count as written', () => {
  assert.equal(addressBlock('2001:db8::5', 128), '2001:db8::5');
  assert.equal(addressBlock('203.0.113.9', 64), '203.0.113.9');
  assert.equal(addressBlock('fe80::1%eth0', 64), 'fe80::1%eth0');
  assert.equal(addressBlock('not:an:address', 64), 'not:an:address');
});

test('addresses of one prefix count alike, however the front end wrote them', () => {
  const forms = ['2001:db8:0:1::5', '2001:DB8:0:1:0:0:0:9', '2001:0db8:0000:0001:ffff:0:0:1'];
  assert.deepEqual(new Set(forms.map((form) => addressBlock(form, 64))), new Set(['2001:db8:0:1::/64']));
});

test('an IPv4 client through NAT64 (64:ff9b::/96) or SIIT (::ffff:0:0/96) counts as its IPv4 address', () => {
  assert.equal(addressBlock('64:ff9b::c000:201', 64), '192.0.2.1');
  assert.equal(addressBlock('64:ff9b::c633:6407', 64), '198.51.100.7');
  assert.equal(addressBlock('::ffff:0:cb00:7109', 64), '203.0.113.9');
  assert.equal(addressBlock('64:ff9b:0:0:1::c000:201', 64), '64:ff9b::/64', 'not the /96: an IPv6 client of that /64');
  assert.equal(addressBlock('64:ff9b::c000:201', 128), '64:ff9b::c000:201', 'at 128 every address on its own, as written');
});
