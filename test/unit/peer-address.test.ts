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

test('one IPv6 address however a proxy wrote it is written one way', () => {
  for (const form of ['2001:db8::5', '2001:db8:0:0:0:0:0:5', '2001:DB8::5', '2001:0db8::5', '2001:db8::0:5', '2001:db8:0::0:0:5']) {
    assert.equal(plainAddress(form), '2001:db8::5', form);
  }
  for (const form of ['::ffff:cb00:7107', '0:0:0:0:0:ffff:cb00:7107', '::FFFF:CB00:7107', '0:0:0:0:0:ffff:203.0.113.7', '0000:0000:0000:0000:0000:FFFF:cb00:7107']) {
    assert.equal(plainAddress(form), '203.0.113.7', form);
  }
  assert.equal(plainAddress('0:0:0:0:0:0:0:1'), '::1');
  assert.equal(plainAddress('::'), '::');
  assert.equal(plainAddress('fe80::'), 'fe80::');
  assert.equal(plainAddress('64:ff9b::192.0.2.33'), '64:ff9b::c000:221');
  assert.equal(plainAddress('1:2:3:4:5:6:7:8'), '1:2:3:4:5:6:7:8');
});

test('other addresses are left as they are', () => {
  for (const address of ['127.0.0.1', '::1', '2001:db8::5', '', '0000:0000:0000:0000:0000:ffff:zzzz:0001', 'fe80::1%lo', '1::2::3', ':::', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '::ffff:1.2.3.256', '::ffff:010.0.0.1', '::FFFF:01.02.03.04', '1:2:3:4:5:6:01.2.3.4', '12345::1', 'unknown']) {
    assert.equal(plainAddress(address), address, address);
  }
});
