import assert from 'node:assert/strict';
import { test } from 'node:test';
import { plainAddress } from '../../src/server/peer-address.js';

test('an IPv4-mapped address in uWS\'s full form is written as the IPv4 address it is', () => {
  assert.equal(plainAddress('0000:0000:0000:0000:0000:ffff:7f00:0001'), '127.0.0.1');
  assert.equal(plainAddress('0000:0000:0000:0000:0000:ffff:cb00:7109'), '203.0.113.9');
  assert.equal(plainAddress('0000:0000:0000:0000:0000:FFFF:0a00:00ff'), '0000:0000:0000:0000:0000:FFFF:0a00:00ff', 'upper case is not what uWS writes: left as is');
});

test('other addresses are left as they are', () => {
  for (const address of ['127.0.0.1', '0000:0000:0000:0000:0000:0000:0000:0001', '2001:0db8:0000:0000:0000:0000:0000:0005', '', '0000:0000:0000:0000:0000:ffff:zzzz:0001']) {
    assert.equal(plainAddress(address), address);
  }
});
