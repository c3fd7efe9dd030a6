/**
 * `methods.timeoutMs`: a method given a timeout of its own (a wide eth_getLogs that takes a node
 * seconds) is waited for that long, once, instead of timing out at requestTimeoutMs and being sent
 * to every node in turn; other methods keep requestTimeoutMs.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeNode } from '../support/fake-node.js';
import { startGateway } from '../support/gateway.js';
import { sleep, StreamClient } from '../support/stream-recorder.js';

test('a method with its own timeout is waited for once; the others time out at requestTimeoutMs and are retried', { timeout: 20_000 }, async (t) => {
  const nodes = await Promise.all([0, 1].map(() => FakeNode.start({ seed: 'method-timeouts' })));
  t.after(() => Promise.all(nodes.map((node) => node.close())));
  for (const node of nodes) {
    for (const method of ['eth_getLogs', 'eth_call']) {
      node.handle(method, async () => {
        await sleep(700);
        return method === 'eth_call' ? '0x01' : [];
      });
    }
  }
  const evmux = await startGateway(nodes.map((node) => node.url), { requestTimeoutMs: 300, retry: { maxAttempts: 2 }, methods: { timeoutMs: { eth_getLogs: 3000 } } });
  t.after(() => evmux.close());
  const client = await StreamClient.open(evmux.wsUrl, 'indexer');
  t.after(() => client.close());
  const asked = (method: string): number => nodes.reduce((sum, node) => sum + (node.stats.requests.get(method) ?? 0), 0);

  const logs = await client.request('eth_getLogs', [{ fromBlock: '0x0', toBlock: 'latest' }]);
  assert.deepEqual(logs['result'], [], `answered after 700 ms: ${JSON.stringify(logs)}`);
  assert.equal(asked('eth_getLogs'), 1, 'asked of one node, once');

  const call = await client.request('eth_call', [{ to: '0x00000000000000000000000000000000000000ee' }, 'latest']);
  const error = call['error'] as { code: number; message: string } | undefined;
  assert.equal(error?.code, -32050, JSON.stringify(call));
  assert.match(error.message, /eth_call timed out after 300 ms\); time allowed: requestTimeoutMs \(300 ms\) per try, retry\.deadlineMs \(\d+ ms\) in all$/, 'names the settings');
  assert.equal(asked('eth_call'), 2, 'timed out at requestTimeoutMs on each of the two attempts');
});
