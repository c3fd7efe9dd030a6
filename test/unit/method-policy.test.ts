import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createMethodPolicy } from '../../src/router/method-policy.js';
import { redactUrl, sessionLabel } from '../../src/log.js';

test('default namespaces: eth/net/web3 allowed, admin-like refused, others unknown', () => {
  const policy = createMethodPolicy({
    allow: ['eth_*', 'net_*', 'web3_*'],
    deny: ['admin_*', 'debug_*', 'personal_*', 'miner_*', 'txpool_*', 'anvil_*', 'evm_*', 'hardhat_*'],
  });
  assert.equal(policy('eth_call'), 'allowed');
  assert.equal(policy('net_version'), 'allowed');
  assert.equal(policy('web3_clientVersion'), 'allowed');
  for (const method of ['admin_peers', 'debug_traceTransaction', 'personal_sign', 'miner_start', 'txpool_content', 'anvil_mine', 'evm_mine', 'hardhat_reset']) {
    assert.equal(policy(method), 'denied', method);
  }
  assert.equal(policy('foo_bar'), 'unknown');
  assert.equal(policy('eth.call'), 'unknown', 'a dot is not a wildcard');
});

test('deny wins over allow', () => {
  const policy = createMethodPolicy({ allow: ['*'], deny: ['eth_sendRawTransaction'] });
  assert.equal(policy('eth_sendRawTransaction'), 'denied');
  assert.equal(policy('debug_traceCall'), 'allowed');
});

test('names that are not letters, digits and underscores are unknown, even under a glob that matches them', () => {
  const policy = createMethodPolicy({ allow: ['*'], deny: [] });
  assert.equal(policy('eth_getBalance'), 'allowed');
  for (const method of ['eth_\ud800', 'eth_foo bar', 'eth_\u0000', 'eth_blockNumber\n', 'eth_ü', 'eth-call']) {
    assert.equal(policy(method), 'unknown', JSON.stringify(method));
  }
});

test('secrets in upstream URLs are redacted', () => {
  assert.equal(redactUrl('wss://user:pass@node.example/ws'), 'wss://***:***@node.example/ws');
  assert.equal(redactUrl('wss://mainnet.infura.io/ws/v3/0123456789abcdef0123456789abcdef'), 'wss://mainnet.infura.io/ws/v3/***');
  assert.equal(redactUrl('ws://127.0.0.1:8546/?apikey=secret'), 'ws://127.0.0.1:8546/?apikey=***');
  assert.equal(redactUrl('wss://node.example/rpc?Zk9sEcretQueryKey77'), 'wss://node.example/rpc?***', 'a key written alone as the query');
  assert.equal(redactUrl('wss://node.example/rpc?a=1&KEY&b='), 'wss://node.example/rpc?a=***&***&b=***');
  assert.equal(redactUrl('ws://127.0.0.1:8546'), 'ws://127.0.0.1:8546/');
  // Short keys and keys with other characters are hidden too: only known words are shown.
  assert.equal(redactUrl('ws://127.0.0.1:19409/ws/abc123SECRET'), 'ws://127.0.0.1:19409/ws/***');
  assert.equal(redactUrl('wss://node.example/rpc/k.e~y=1/mainnet'), 'wss://node.example/rpc/***/mainnet');
  assert.equal(redactUrl('wss://eth2.node.example/v2/eth2'), 'wss://eth2.node.example/v2/eth2');
  // A key of lower-case letters looks like a word: only known words are shown.
  assert.equal(redactUrl('wss://node.example/v3/lowersecretkey'), 'wss://node.example/v3/***');
  assert.equal(redactUrl('wss://node.example/eth/mainnet/abc'), 'wss://node.example/eth/mainnet/***');
});

test('session keys that are API keys show in logs as a digest, IPs as they are', () => {
  assert.equal(sessionLabel('ip:203.0.113.7'), 'ip:203.0.113.7');
  for (const key of ['path:CLIENTSECRETAPIKEY123', 'header:Bearer CLIENT-SECRET-TOKEN', 'query:k1']) {
    const label = sessionLabel(key);
    assert.match(label, /^(path|header|query):sha256:[0-9a-f]{12}$/, label);
    assert.ok(!label.includes(key.slice(key.indexOf(':') + 1)), label);
    assert.equal(sessionLabel(key), label, 'the same key, the same label');
  }
  assert.notEqual(sessionLabel('path:a'), sessionLabel('path:b'));
});
