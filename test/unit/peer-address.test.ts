import assert from 'node:assert/strict';
import { test } from 'node:test';
import { plainAddress } from '../../src/server/peer-address.js';

test('an IPv4-mapped address in uWS\'s full form is written as the IPv4 address it is', () => {
  assert.equal(plainAddress('0000:0000:0000:0000:0000:ffff:7f00:0001'), '127.0.0.1');
  assert.equal(plainAddress('0000:0000:0000:0000:0000:ffff:cb00:7109'), '203.0.113.9');
  // As a proxy on a dual-stack socket forwards it.
  assert.equal(plainAddress('::ffff:203.0.113.9'), '203.0.113.9');
  assert.equal(plainAddress('::FFFF:203.0.113.9'), '203.0.113.9');
});

test('another IPv6 address in full form is written short (RFC 5952)', () => {
  assert.equal(plainAddress('0000:0000:0000:0000:0000:0000:0000:0001'), '::1');
  assert.equal(plainAddress('0000:0000:0000:0000:0000:0000:0000:0000'), '::');
  assert.equal(plainAddress('2001:0db8:0000:0000:0000:0000:0000:0005'), '2001:db8::5');
  assert.equal(plainAddress('2001:0db8:0000:0001:0000:0000:0000:0001'), '2001:db8:0:1::1');
  assert.equal(plainAddress('2001:0db8:0000:0000:0001:0000:0000:0001'), '2001:db8::1:0:0:1', 'the first of two equal runs');
  assert.equal(plainAddress('2001:0db8:0001:0002:0003:0004:0000:0005'), '2001:db8:1:2:3:4:0:5', 'one zero group stays');
  assert.equal(plainAddress('fe80:0000:0000:0000:0000:0000:0000:0000'), 'fe80::');
});

test('other addresses are left as they are', () => {
  for (const address of ['127.0.0.1', '::1', '2001:db8::5', '', '0000:0000:0000:0000:0000:ffff:zzzz:0001', '0000:0000:0000:0000:0000:FFFF:0a00:00ff']) {
    assert.equal(plainAddress(address), address);
  }
});
