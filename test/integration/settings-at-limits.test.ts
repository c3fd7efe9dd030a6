/**
 * Settings at the largest values the schema takes still work as they say: each alone is within
 * Node's timer limit (2^31 - 1 ms), but a deadline made of two of them was not, and a timer past
 * the limit fires after 1 ms. And a client that repeats a call whose answer is over
 * limits.maxAnswerBytes, at its minimum, as fast as it likes, takes no node out of rotation. Real
 * anvil nodes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { CutRelay } from '../support/cut-relay.js';
import { DelayRelay } from '../support/delay-relay.js';
import { startGateway } from '../support/gateway.js';
import { rpc, rpcAnswer } from '../support/node-rpc.js';
import { sleep, StreamClient, waitUntil } from '../support/stream-recorder.js';

const MAX_SETTING = 2 ** 31 - 1;

test('heartbeat.intervalMs at its largest (pings as good as off): evmux connects to nodes 5 ms away and answers', async (t) => {
  const devnet = await LockstepDevnet.start({ nodes: 2, blockTimeMs: 0 });
  t.after(() => devnet.close());
  const relays = await Promise.all(devnet.nodes.map((node) => DelayRelay.start(node.port, 5)));
  t.after(() => Promise.all(relays.map((relay) => relay.close())));
  const evmux = await startGateway(
    relays.map((relay) => `ws://127.0.0.1:${relay.port}/`),
    { heartbeat: { intervalMs: MAX_SETTING, timeoutMs: 5000 } },
    { waitReady: false },
  );
  t.after(() => evmux.close());
  await evmux.gateway.waitUntilReady(5_000);
  assert.equal(await rpc<string>(evmux.httpUrl, 'eth_blockNumber', []), `0x${devnet.blockNumber.toString(16)}`);
  assert.equal(evmux.logs.filter((line) => String(line['reason'] ?? '').includes('handshake not completed')).length, 0, 'no connect attempt given up');
});

test('heartbeat.intervalMs at its largest: a connect into a front that never answers the handshake is given up after 2 × timeoutMs', async (t) => {
  const devnet = await LockstepDevnet.start({ nodes: 1, blockTimeMs: 0 });
  t.after(() => devnet.close());
  const relay = await CutRelay.start(devnet.nodes[0]!.port);
  t.after(() => relay.close());
  const evmux = await startGateway([`ws://127.0.0.1:${relay.port}/`], { heartbeat: { intervalMs: MAX_SETTING, timeoutMs: 1000 } });
  t.after(() => evmux.close());
  const usable = async (): Promise<number> => (JSON.parse((await evmux.get('/readyz')).body) as { usableUpstreams: number }).usableUpstreams;
  // The front drops its connections and, for a moment, takes new ones without a word; those stay hung.
  relay.cut(0);
  relay.mute();
  await waitUntil('the node down', async () => (await usable()) === 0, 5_000);
  await sleep(1_000);
  relay.unmute();
  const back = performance.now();
  await waitUntil('the node back', async () => (await usable()) === 1, 6_000);
  assert.ok(performance.now() - back < 6_000);
  assert.ok(evmux.logs.some((line) => /handshake not completed within 2000 ms/.test(String(line['err'] ?? ''))), 'the hung attempt was given up');
});

test('limits.maxAnswerBytes at its minimum, a too-wide eth_getLogs repeated ten times a second: no node leaves rotation, other calls are all answered', async (t) => {
  const devnet = await LockstepDevnet.start({ nodes: 3, blockTimeMs: 0, traffic: true });
  t.after(() => devnet.close());
  // The default backoff: the tests' short one hid a socket kept away for seconds.
  const evmux = await startGateway(devnet.nodes.map((node) => node.wsUrl), { limits: { maxAnswerBytes: 65_536 }, reconnect: { baseMs: 100, maxMs: 10_000 } });
  t.after(() => evmux.close());
  // About 250 bytes of log per block: the logs of 400 blocks are over 64 KiB.
  await devnet.mine(400);
  const wide = [{ fromBlock: '0x0', toBlock: 'latest' }];
  let stop = false;
  const tooLarge: unknown[] = [];
  const otherErrors: unknown[] = [];
  let reads = 0;
  const heavy = (async () => {
    while (!stop) {
      const answer = await rpcAnswer(evmux.httpUrl, 'eth_getLogs', wide);
      tooLarge.push(answer.error?.code ?? 'answered');
      await sleep(100);
    }
  })();
  const reader = (async () => {
    while (!stop) {
      const answer = await rpcAnswer(evmux.httpUrl, 'eth_blockNumber', []);
      reads++;
      if (answer.error !== undefined) otherErrors.push(answer.error);
      await sleep(50);
    }
  })();
  await sleep(8_000);
  stop = true;
  await Promise.all([heavy, reader]);
  const judged = evmux.logs.filter((line) => line['msg'] === 'upstream down' || line['msg'] === 'upstream not usable');
  assert.deepEqual(judged, [], 'no node went down or out of rotation');
  assert.deepEqual(otherErrors, [], 'the reads beside them are all answered');
  assert.ok(reads >= 100, `the reads beside them are not held up: ${reads} in 8 s`);
  assert.ok(tooLarge.length >= 40 && tooLarge.every((code) => code === -32602), `the wide reads are refused as too large: ${JSON.stringify(tooLarge.slice(0, 5))}`);
  assert.equal(JSON.parse((await evmux.get('/readyz')).body).usableUpstreams, 3);
});

test("limits.maxAnswerBytes at its minimum and blocks whose logs pass it: evmux's own fetches of them take no node out of rotation, other calls are all answered", async (t) => {
  const devnet = await LockstepDevnet.start({ nodes: 1, blockTimeMs: 0, traffic: false });
  t.after(() => devnet.close());
  const node = devnet.nodes[0]!;
  // PUSH3 40000, PUSH1 0, LOG0, STOP: one log of 40,000 bytes (80 KB of hex) per call.
  const emitter = '0x0000000000000000000000000000000000000e11';
  await rpc(node.httpUrl, 'anvil_setCode', [emitter, `0x62${(40_000).toString(16).padStart(6, '0')}6000a000`]);
  const [from] = await rpc<string[]>(node.httpUrl, 'eth_accounts', []);
  const evmux = await startGateway([node.wsUrl], { limits: { maxAnswerBytes: 65_536 }, reconnect: { baseMs: 100, maxMs: 10_000 } });
  t.after(() => evmux.close());
  const subscriber = await StreamClient.open(evmux.wsUrl, 'logs');
  t.after(() => subscriber.close());
  await subscriber.subscribe(['logs', { address: emitter }]);
  const reader = await StreamClient.open(evmux.wsUrl, 'reader');
  t.after(() => reader.close());

  let stop = false;
  const miner = (async () => {
    while (!stop) {
      await rpc(node.httpUrl, 'eth_sendTransaction', [{ from, to: emitter, gas: '0x1000000' }]);
      await devnet.mine();
      await sleep(500);
    }
  })();
  const failures: unknown[] = [];
  let answered = 0;
  const reads = Array.from({ length: 4 }, async () => {
    while (!stop) {
      const answer = await reader.request('eth_getBalance', [from, 'latest']);
      if (answer['result'] !== undefined) answered++;
      else failures.push(answer['error']);
      await sleep(50);
    }
  });
  await sleep(8_000);
  stop = true;
  await Promise.all([miner, ...reads]);
  assert.deepEqual(failures, [], 'the reader beside the logs stream');
  assert.ok(answered >= 200, `answered ${answered}`);
  assert.deepEqual(evmux.logs.filter((line) => line['msg'] === 'upstream down' || line['msg'] === 'upstream not usable'), []);
});
