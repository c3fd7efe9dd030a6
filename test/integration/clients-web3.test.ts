/**
 * web3.js v4, unchanged, through evmux (HTTP and WebSocket providers): every call answers what
 * node0 answers directly, a signed transaction gets mined, BatchRequest works, and
 * `web3.eth.subscribe('newBlockHeaders' | 'logs' | 'pendingTransactions')` see every block, event
 * and transaction exactly once (`logs` with `fromBlock` too).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Web3, WebSocketProvider } from 'web3';
import { emitterCallData } from '../../src/devnet/emitter-contract.js';
import {
  assertBlockSequence,
  assertLogSequence,
  blockRange,
  logKey,
  SocketTap,
  startClientFixture,
  waitFor,
  type ClientFixture,
  type LogKey,
  type TappableSocket,
} from '../support/client-fixture.js';

let fx: ClientFixture;

before(async () => {
  fx = await startClientFixture();
  await fx.mineWithEmits(2, 2);
});

after(async () => {
  await fx?.close();
});

type Kind = 'HTTP' | 'WebSocket';

interface Web3Client {
  web3: Web3;
  /** Only for WebSocket: sees the frames web3 sends and receives. */
  tap: SocketTap | undefined;
  close(): Promise<void>;
}

function openClient(kind: Kind, target: 'evmux' | 'direct'): Web3Client {
  const url = kind === 'HTTP' ? (target === 'evmux' ? fx.evmux.httpUrl : fx.direct.httpUrl) : target === 'evmux' ? fx.evmux.wsUrl : fx.direct.wsUrl;
  if (kind === 'HTTP') {
    const web3 = new Web3(url);
    tune(web3);
    return { web3, tap: undefined, close: async () => {} };
  }
  // No reconnects: a socket that closes under the test should fail it, not be papered over.
  const provider = new WebSocketProvider(url, {}, { autoReconnect: false });
  const tap = new SocketTap(provider.SocketConnection as TappableSocket);
  const web3 = new Web3(provider);
  tune(web3);
  return {
    web3,
    tap,
    close: async () => {
      await web3.eth.clearSubscriptions();
      provider.disconnect(1000, 'test done');
    },
  };
}

/** Poll receipts fast: the defaults (1 s) would dominate the run time. */
function tune(web3: Web3): void {
  web3.eth.transactionPollingInterval = 50;
  web3.eth.transactionReceiptPollingInterval = 50;
}

for (const kind of ['HTTP', 'WebSocket'] as const) {
  describe(`web3.js ${kind} provider through evmux`, () => {
    let evmux: Web3Client;
    let direct: Web3Client;
    before(() => {
      evmux = openClient(kind, 'evmux');
      direct = openClient(kind, 'direct');
    });
    after(async () => {
      await evmux?.close();
      await direct?.close();
    });

    /** Run the same query on evmux and on node0; they must agree. */
    async function same<T>(query: (web3: Web3) => Promise<T>): Promise<T> {
      const [viaEvmux, viaNode] = await Promise.all([query(evmux.web3), query(direct.web3)]);
      assert.deepEqual(viaEvmux, viaNode);
      return viaEvmux;
    }

    test('getChainId, getBlockNumber, getBalance', async () => {
      assert.equal(await same((w) => w.eth.getChainId()), BigInt(fx.devnet.chainId));
      assert.equal(await same((w) => w.eth.getBlockNumber()), BigInt(fx.devnet.blockNumber));
      const account = evmux.web3.eth.accounts.privateKeyToAccount(fx.devnet.testAccountKey);
      assert.ok((await same((w) => w.eth.getBalance(account.address))) > 0n);
      assert.equal(await same((w) => w.eth.getBalance(fx.devnet.emitterAddress, 1)), 0n);
    });

    test('getBlock by number and by hash, with and without transactions', async () => {
      const head = fx.devnet.blockNumber;
      const light = await same((w) => w.eth.getBlock(head, false));
      assert.equal(light.number, BigInt(head));
      assert.ok(light.transactions.length > 0, 'devnet traffic is in every block');
      assert.equal(typeof light.transactions[0], 'string');
      const full = await same((w) => w.eth.getBlock(head, true));
      const firstTx = full.transactions[0];
      assert.ok(typeof firstTx === 'object' && firstTx.hash === light.transactions[0]);
      assert.ok(light.hash !== undefined);
      const hash = light.hash;
      assert.deepEqual(await same((w) => w.eth.getBlock(hash, false)), light);
      assert.deepEqual(await same((w) => w.eth.getBlock(hash, true)), full);
      assert.equal((await same((w) => w.eth.getBlock('latest'))).hash, hash);
    });

    test('call and estimateGas on the emitter contract', async () => {
      const counter = await same((w) => w.eth.call({ to: fx.devnet.emitterAddress, data: '0x' }));
      assert.equal(counter.length, 66, '32-byte counter');
      assert.ok(BigInt(counter) > 0n, 'the devnet emitted pings already');
      const from = evmux.web3.eth.accounts.privateKeyToAccount(fx.devnet.testAccountKey).address;
      const gas = await same((w) => w.eth.estimateGas({ from, to: fx.devnet.emitterAddress, data: emitterCallData(42n) }));
      assert.ok(gas > 21_000n);
    });

    test('getPastLogs of the emitter', async () => {
      const head = fx.devnet.blockNumber;
      const logs = await same((w) =>
        w.eth.getPastLogs({ address: fx.devnet.emitterAddress, topics: [fx.devnet.emitterTopic], fromBlock: 1, toBlock: head }),
      );
      const keys = logs.map((log) => (typeof log === 'string' ? log : logKey(log)));
      assert.deepEqual(keys, await fx.emitterLogs(1n, BigInt(head)));
    });

    test('a transaction signed with web3 accounts and sent with sendSignedTransaction is mined', async () => {
      const { web3 } = evmux;
      const account = web3.eth.accounts.privateKeyToAccount(fx.devnet.testAccountKey);
      const nonce = await web3.eth.getTransactionCount(account.address, 'pending');
      const { maxFeePerGas, maxPriorityFeePerGas } = await web3.eth.calculateFeeData();
      assert.ok(maxFeePerGas !== undefined && maxPriorityFeePerGas !== undefined, 'EIP-1559 fees');
      const gas = await web3.eth.estimateGas({ from: account.address, to: fx.devnet.emitterAddress, data: emitterCallData(7n) });
      const signed = await account.signTransaction({
        type: 2,
        chainId: BigInt(fx.devnet.chainId),
        nonce,
        gas,
        maxFeePerGas,
        maxPriorityFeePerGas,
        to: fx.devnet.emitterAddress,
        data: emitterCallData(7n),
      });
      const raw = signed.rawTransaction as `0x${string}`;
      const expectedHash = fx.queueClientTransaction(raw);
      const sending = web3.eth.sendSignedTransaction(raw);
      // The hash event means evmux has handed the transaction to a node: only then mine.
      const hash = await new Promise<string>((resolve, reject) => {
        sending.once('transactionHash', (h) => resolve(String(h))).catch(reject);
      });
      assert.equal(hash, expectedHash);
      await fx.devnet.mine(1);
      const receipt = await sending;
      assert.equal(receipt.status, 1n);
      assert.equal(receipt.blockNumber, BigInt(fx.devnet.blockNumber));
      assert.equal(receipt.logs.length, 1, 'the emitter logged one Ping');
      assert.deepEqual(receipt, await direct.web3.eth.getTransactionReceipt(hash));
      const tx = await same((w) => w.eth.getTransaction(hash));
      assert.equal(tx.from.toLowerCase(), account.address.toLowerCase());
      assert.equal(tx.nonce, nonce);
    });

    test('BatchRequest', async () => {
      const from = evmux.web3.eth.accounts.privateKeyToAccount(fx.devnet.testAccountKey).address;
      const head = `0x${fx.devnet.blockNumber.toString(16)}`;
      const requests = [
        { method: 'eth_chainId', params: [] },
        { method: 'eth_blockNumber', params: [] },
        { method: 'eth_getBalance', params: [from, 'latest'] },
        { method: 'eth_getBlockByNumber', params: [head, false] },
        { method: 'eth_call', params: [{ to: fx.devnet.emitterAddress, data: '0x' }, 'latest'] },
        { method: 'eth_getLogs', params: [{ address: fx.devnet.emitterAddress, fromBlock: '0x1', toBlock: head }] },
      ];
      const run = async (web3: Web3): Promise<unknown[]> => {
        const batch = new web3.BatchRequest();
        const results = requests.map((request, index) => batch.add({ jsonrpc: '2.0', id: index + 1, ...request }));
        const responses = await batch.execute({ timeout: 5000 });
        assert.equal(responses.length, requests.length);
        return Promise.all(results);
      };
      const sentBefore = evmux.tap?.batchesSent ?? 0;
      const [viaEvmux, viaNode] = await Promise.all([run(evmux.web3), run(direct.web3)]);
      assert.deepEqual(viaEvmux, viaNode);
      assert.equal(viaEvmux[0], `0x${fx.devnet.chainId.toString(16)}`);
      assert.equal(viaEvmux[1], head);
      if (evmux.tap !== undefined) assert.equal(evmux.tap.batchesSent, sentBefore + 1, 'one batch frame on the socket');
    });

    // web3.js reads a filter id as a number and writes it back without leading zeros.
    test('createNewFilter and createNewBlockFilter, polled with getFilterChanges and getFilterLogs, then uninstalled', async () => {
      const criteria = { address: fx.devnet.emitterAddress, topics: [fx.devnet.emitterTopic] };
      const make = async (w: Web3): Promise<[bigint, bigint]> => [BigInt(await w.eth.createNewFilter(criteria)), BigInt(await w.eth.createNewBlockFilter())];
      const [[logsId, blocksId], [directLogsId, directBlocksId]] = await Promise.all([make(evmux.web3), make(direct.web3)]);
      const from = BigInt(fx.devnet.blockNumber) + 1n;
      await fx.mineWithEmits(2, 2);
      const logs = await evmux.web3.eth.getFilterChanges(logsId);
      const directLogs = await direct.web3.eth.getFilterChanges(directLogsId);
      assert.deepEqual(logs, directLogs);
      assert.deepEqual(
        logs.map((log) => (typeof log === 'string' ? log : logKey(log))),
        await fx.emitterLogs(from, BigInt(fx.devnet.blockNumber)),
      );
      const blocks = await evmux.web3.eth.getFilterChanges(blocksId);
      assert.equal(blocks.length, 2);
      assert.deepEqual(blocks, await direct.web3.eth.getFilterChanges(directBlocksId));
      // No fromBlock: the filter's logs are those of the latest block (anvil).
      assert.deepEqual(await evmux.web3.eth.getFilterLogs(logsId), await direct.web3.eth.getFilterLogs(directLogsId));
      assert.equal(await evmux.web3.eth.uninstallFilter(logsId), true);
      assert.equal(await evmux.web3.eth.uninstallFilter(logsId), false);
      assert.equal(await evmux.web3.eth.uninstallFilter(blocksId), true);
      await Promise.all([direct.web3.eth.uninstallFilter(directLogsId), direct.web3.eth.uninstallFilter(directBlocksId)]);
    });
  });
}

test("web3.js subscribe('newBlockHeaders') and subscribe('logs') through evmux", async () => {
  const client = openClient('WebSocket', 'evmux');
  const tap = client.tap;
  assert.ok(tap !== undefined);
  try {
    const { web3 } = client;
    const errors: unknown[] = [];
    const blocks: bigint[] = [];
    const logs: LogKey[] = [];
    // Nothing mines unless told to: this is the head while the subscription starts.
    const start = await fx.devnet.head(0);
    const startHead = start.number;
    const heads = await web3.eth.subscribe('newBlockHeaders');
    heads.on('data', (header) => void blocks.push(BigInt(header.number ?? -1)));
    heads.on('error', (error) => void errors.push(error));
    const events = await web3.eth.subscribe('logs', { address: fx.devnet.emitterAddress, topics: [fx.devnet.emitterTopic] });
    events.on('data', (log) => void logs.push(logKey(log)));
    events.on('error', (error) => void errors.push(error));
    await waitFor(async () => (await fx.clientSubscriptions()) === 2, 'two client subscriptions in evmux');

    await fx.mineWithEmits(4, 2);
    const endHead = BigInt(fx.devnet.blockNumber);
    const expected = await fx.emitterLogs(startHead + 1n, endHead);
    await waitFor(() => blocks.at(-1) === endHead && logs.length >= expected.length, 'every block and event delivered', {
      state: async () => ({ startHead, endHead, blocks, logs: logs.length, expectedLogs: expected.length, evmux: await fx.diagnostics() }),
    });
    await sleep(300); // anything delivered twice would show up now
    assert.deepEqual(errors, []);
    // On the wire evmux greets the subscription with the current head, then sends every block.
    const wire = tap.notifications(heads.id).map((result) => result as { number: string; hash: string });
    assert.deepEqual(wire.map((head) => BigInt(head.number)), blockRange(startHead, endHead), 'newHeads frames: the head at subscribe time, then every block');
    assert.equal(wire[0]?.hash, start.hash, 'the greeting is the canonical head');
    // web3.js v4 learns a subscription id only once the reply's promise chain has run, and drops
    // notifications for ids it does not know yet: a greeting that arrives in the same socket read
    // as the reply never reaches 'data'. What it does report must still be exact from there on.
    const reportedFrom = blocks[0] === startHead ? startHead : startHead + 1n;
    assertBlockSequence(blocks, reportedFrom, endHead, 'newBlockHeaders');
    assertLogSequence(logs, expected, 'logs');

    await heads.unsubscribe();
    await events.unsubscribe();
    assert.deepEqual(tap.results('eth_unsubscribe'), [true, true]);
    await waitFor(async () => (await fx.clientSubscriptions()) === 0, 'evmux_client_subscriptions back to 0');
    await fx.mineWithEmits(1);
    await sleep(200);
    assert.equal(blocks.at(-1), endHead, 'nothing delivered after unsubscribe');
  } finally {
    await client.close();
  }
});

test("web3.js subscribe('logs', { fromBlock }) through evmux: past logs backfilled by web3.js, then new ones, each once", async () => {
  const client = openClient('WebSocket', 'evmux');
  try {
    const { web3 } = client;
    const errors: unknown[] = [];
    const logs: LogKey[] = [];
    const startHead = (await fx.devnet.head(0)).number;
    // web3.js sends fromBlock to eth_subscribe (geth and anvil accept it there) and fetches the past
    // logs itself with eth_getLogs. As a number it reaches the node as a number, which nodes refuse.
    const events = await web3.eth.subscribe('logs', { address: fx.devnet.emitterAddress, topics: [fx.devnet.emitterTopic], fromBlock: '0x1' });
    events.on('data', (log) => void logs.push(logKey(log)));
    events.on('error', (error) => void errors.push(error));
    await waitFor(async () => (await fx.clientSubscriptions()) === 1, 'the client subscription in evmux');
    await fx.mineWithEmits(2, 2);
    const endHead = BigInt(fx.devnet.blockNumber);
    const past = await fx.emitterLogs(1n, startHead);
    const fresh = await fx.emitterLogs(startHead + 1n, endHead);
    await waitFor(() => logs.length >= past.length + fresh.length, 'past and new events delivered', {
      state: async () => ({ startHead, endHead, logs: logs.length, past: past.length, fresh: fresh.length, evmux: await fx.diagnostics() }),
    });
    await sleep(300); // anything delivered twice would show up now
    assert.deepEqual(errors, []);
    // The backfill and the stream race each other in web3.js: compare as sets, then check no repeats.
    assert.deepEqual([...logs].sort(), [...past, ...fresh].sort(), 'every past and new event exactly once');
    await events.unsubscribe();
  } finally {
    await client.close();
  }
});

test("web3.js subscribe('pendingTransactions') through evmux: every transaction once", async () => {
  const client = openClient('WebSocket', 'evmux');
  try {
    const seen: string[] = [];
    const errors: unknown[] = [];
    const pending = await client.web3.eth.subscribe('pendingTransactions');
    pending.on('data', (hash) => void seen.push(String(hash)));
    pending.on('error', (error) => void errors.push(error));
    await fx.expectPendingReported(seen, "subscribe('pendingTransactions')");
    assert.deepEqual(errors, []);
    await pending.unsubscribe();
  } finally {
    await client.close();
  }
});
