/**
 * viem, unchanged, through evmux (http and webSocket transports): every call answers what node0
 * answers directly, a signed transaction gets mined, http batching works, and viem's own watch*
 * helpers over the webSocket transport see every block, event and pending transaction exactly once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  createPublicClient,
  createWalletClient,
  http,
  webSocket,
  type Chain,
  type PublicClient,
  type Transport,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { watchBlockNumber } from 'viem/actions';
import { anvil } from 'viem/chains';
import { EMITTER_EVENT_ABI, emitterCallData } from '../../src/devnet/emitter-contract.js';
import {
  assertBlockSequence,
  assertLogSequence,
  logKey,
  SocketTap,
  startClientFixture,
  waitFor,
  type ClientFixture,
  type LogKey,
} from '../support/client-fixture.js';

const PING_EVENT = EMITTER_EVENT_ABI[0];

let fx: ClientFixture;

before(async () => {
  fx = await startClientFixture();
  // A few blocks with emitter logs so getLogs and getBlock have something to return.
  await fx.mineWithEmits(2, 2);
});

after(async () => {
  await fx?.close();
});

type Kind = 'http' | 'webSocket';

interface ClientPair {
  evmux: PublicClient<Transport, Chain>;
  direct: PublicClient<Transport, Chain>;
  transport(url: string): Transport;
  close(): Promise<void>;
}

function openPair(kind: Kind): ClientPair {
  // cacheTime 0: viem would otherwise reuse a block number for 4 s and miss what the test mined.
  const options = { chain: anvil, cacheTime: 0, pollingInterval: 50 } as const;
  if (kind === 'http') {
    return {
      evmux: createPublicClient({ ...options, transport: http(fx.evmux.httpUrl) }),
      direct: createPublicClient({ ...options, transport: http(fx.direct.httpUrl) }),
      transport: (url) => http(url),
      close: async () => {},
    };
  }
  const evmux = createPublicClient({ ...options, transport: webSocket(fx.evmux.wsUrl) });
  const direct = createPublicClient({ ...options, transport: webSocket(fx.direct.wsUrl) });
  return {
    evmux,
    direct,
    transport: (url) => webSocket(url),
    close: async () => {
      for (const client of [evmux, direct]) (await client.transport.getRpcClient()).close();
    },
  };
}

for (const kind of ['http', 'webSocket'] as const) {
  describe(`viem ${kind} transport through evmux`, () => {
    let pair: ClientPair;
    before(() => {
      pair = openPair(kind);
    });
    after(async () => {
      await pair?.close();
    });

    /** Run the same query on evmux and on node0; they must agree. */
    async function same<T>(query: (client: PublicClient<Transport, Chain>) => Promise<T>): Promise<T> {
      const [viaEvmux, direct] = await Promise.all([query(pair.evmux), query(pair.direct)]);
      assert.deepEqual(viaEvmux, direct);
      return viaEvmux;
    }

    test('getChainId, getBlockNumber, getBalance', async () => {
      assert.equal(await same((c) => c.getChainId()), fx.devnet.chainId);
      assert.equal(await same((c) => c.getBlockNumber()), BigInt(fx.devnet.blockNumber));
      const account = privateKeyToAccount(fx.devnet.testAccountKey);
      assert.ok((await same((c) => c.getBalance({ address: account.address }))) > 0n);
      assert.ok((await same((c) => c.getBalance({ address: fx.devnet.emitterAddress, blockNumber: 1n }))) === 0n);
    });

    test('getBlock by number and by hash, with and without transactions', async () => {
      const head = BigInt(fx.devnet.blockNumber);
      const light = await same((c) => c.getBlock({ blockNumber: head }));
      assert.equal(light.number, head);
      assert.ok(light.transactions.length > 0, 'devnet traffic is in every block');
      assert.equal(typeof light.transactions[0], 'string');
      const full = await same((c) => c.getBlock({ blockNumber: head, includeTransactions: true }));
      assert.equal(full.transactions[0]?.hash, light.transactions[0]);
      assert.deepEqual(await same((c) => c.getBlock({ blockHash: light.hash })), light);
      assert.deepEqual(await same((c) => c.getBlock({ blockHash: light.hash, includeTransactions: true })), full);
      assert.equal((await same((c) => c.getBlock({ blockTag: 'latest' }))).hash, light.hash);
    });

    test('call and estimateGas on the emitter contract', async () => {
      const { data } = await same((c) => c.call({ to: fx.devnet.emitterAddress }));
      assert.ok(data !== undefined && data.length === 66, '32-byte counter');
      assert.ok(BigInt(data) > 0n, 'the devnet emitted pings already');
      const account = privateKeyToAccount(fx.devnet.testAccountKey);
      const gas = await same((c) =>
        c.estimateGas({ account: account.address, to: fx.devnet.emitterAddress, data: emitterCallData(42n) }),
      );
      assert.ok(gas > 21_000n);
    });

    test('getLogs of the emitter, raw and decoded', async () => {
      const head = BigInt(fx.devnet.blockNumber);
      const raw = await same((c) => c.getLogs({ address: fx.devnet.emitterAddress, fromBlock: 1n, toBlock: head }));
      assert.deepEqual(raw.map(logKey), await fx.emitterLogs(1n, head));
      const decoded = await same((c) => c.getLogs({ address: fx.devnet.emitterAddress, event: PING_EVENT, fromBlock: 1n, toBlock: head }));
      assert.equal(decoded.length, raw.length);
      assert.ok(decoded.every((log) => log.eventName === 'Ping' && typeof log.args.value === 'bigint'));
    });

    test('a signed sendRawTransaction is mined and its receipt matches node0', async () => {
      const account = privateKeyToAccount(fx.devnet.testAccountKey);
      const wallet = createWalletClient({ account, chain: anvil, transport: pair.transport(kind === 'http' ? fx.evmux.httpUrl : fx.evmux.wsUrl) });
      // nonce, gas and fees come from evmux through viem's own preparation.
      const request = await wallet.prepareTransactionRequest({ to: fx.devnet.emitterAddress, data: emitterCallData(7n) });
      const raw = await wallet.signTransaction(request);
      const expectedHash = fx.queueClientTransaction(raw);
      const hash = await wallet.sendRawTransaction({ serializedTransaction: raw });
      assert.equal(hash, expectedHash);
      await fx.devnet.mine(1);
      const receipt = await pair.evmux.waitForTransactionReceipt({ hash, pollingInterval: 50, timeout: 10_000 });
      assert.equal(receipt.status, 'success');
      assert.equal(receipt.blockNumber, BigInt(fx.devnet.blockNumber));
      assert.equal(receipt.logs.length, 1, 'the emitter logged one Ping');
      assert.deepEqual(receipt, await pair.direct.getTransactionReceipt({ hash }));
      const tx = await same((c) => c.getTransaction({ hash }));
      assert.equal(tx.from.toLowerCase(), account.address.toLowerCase());
      assert.equal(tx.nonce, request.nonce);
    });
  });
}

test('viem http transport with batch: true sends one JSON-RPC batch and gets node0 results', async () => {
  const bodies: unknown[] = [];
  const batched = createPublicClient({
    chain: anvil,
    cacheTime: 0,
    transport: http(fx.evmux.httpUrl, {
      batch: { batchSize: 10, wait: 20 },
      onFetchRequest: (_request, init) => {
        bodies.push(JSON.parse(String(init.body)));
      },
    }),
  });
  const direct = createPublicClient({ chain: anvil, cacheTime: 0, transport: http(fx.direct.httpUrl) });
  const account = privateKeyToAccount(fx.devnet.testAccountKey);
  const head = BigInt(fx.devnet.blockNumber);
  const queries = (c: typeof direct) =>
    Promise.all([
      c.getChainId(),
      c.getBlockNumber(),
      c.getBalance({ address: account.address }),
      c.getBlock({ blockNumber: head }),
      c.call({ to: fx.devnet.emitterAddress }),
      c.getLogs({ address: fx.devnet.emitterAddress, fromBlock: 1n, toBlock: head }),
    ]);
  const viaEvmux = await queries(batched);
  assert.deepEqual(viaEvmux, await queries(direct));
  assert.equal(bodies.length, 1, 'one HTTP request');
  assert.ok(Array.isArray(bodies[0]) && bodies[0].length === 6, 'carrying a batch of six calls');
});

test("viem http transport with batch: true and viem's defaults: 300 reads of one tick are one batch, each answered", async () => {
  const bodies: unknown[] = [];
  // batch: true is a batch of up to 1,000 calls, all those of one tick; the default
  // limits.maxInFlightPerConnection is 128, so most of these wait for a slot.
  const batched = createPublicClient({
    chain: anvil,
    cacheTime: 0,
    transport: http(fx.evmux.httpUrl, { batch: true, onFetchRequest: (_request, init) => void bodies.push(JSON.parse(String(init.body))) }),
  });
  const direct = createPublicClient({ chain: anvil, cacheTime: 0, transport: http(fx.direct.httpUrl) });
  const addresses = Array.from({ length: 300 }, (_, i) => `0x${(i + 1).toString(16).padStart(40, '0')}` as const);
  const account = privateKeyToAccount(fx.devnet.testAccountKey).address;
  const viaEvmux = await Promise.all([account, ...addresses].map((address) => batched.getBalance({ address })));
  assert.equal(bodies.length, 1, 'one HTTP request');
  assert.ok(Array.isArray(bodies[0]) && bodies[0].length === 301, 'carrying a batch of 301 calls');
  assert.deepEqual(viaEvmux, await Promise.all([account, ...addresses].map((address) => direct.getBalance({ address }))));
  assert.ok(viaEvmux[0]! > 0n);
});

test('viem watchBlocks, watchBlockNumber, watchEvent and watchContractEvent over webSocket through evmux', async () => {
  // A short keep-alive puts viem's `net_version` pings (id null) on the socket during the test.
  const client = createPublicClient({ chain: anvil, cacheTime: 0, transport: webSocket(fx.evmux.wsUrl, { keepAlive: { interval: 100 } }) });
  const rpc = await client.transport.getRpcClient();
  const tap = new SocketTap(rpc.socket);
  try {
    const errors: Error[] = [];
    const onError = (error: Error): void => {
      errors.push(error);
    };
    const blocks: bigint[] = [];
    const blockNumbers: bigint[] = [];
    const events: LogKey[] = [];
    const contractEvents: LogKey[] = [];
    const values: bigint[] = [];
    const startHead = BigInt(fx.devnet.blockNumber);
    const address = fx.devnet.emitterAddress;
    const unwatch = [
      client.watchBlocks({ poll: false, onError, onBlock: (block) => void blocks.push(block?.number ?? -1n) }),
      // The standalone action: the client method's type does not offer `poll: false`.
      watchBlockNumber(client, { poll: false, onError, onBlockNumber: (n) => void blockNumbers.push(n) }),
      client.watchEvent({
        poll: false,
        address,
        event: PING_EVENT,
        onError,
        onLogs: (logs) => {
          for (const log of logs) {
            events.push(logKey(log));
            values.push(log.args.value ?? -1n);
          }
        },
      }),
      client.watchContractEvent({
        poll: false,
        address,
        abi: EMITTER_EVENT_ABI,
        eventName: 'Ping',
        onError,
        onLogs: (logs) => void contractEvents.push(...logs.map(logKey)),
      }),
    ];
    await waitFor(async () => (await fx.clientSubscriptions()) === 4, 'four client subscriptions in evmux');
    await waitFor(() => tap.results('eth_subscribe').length === 4, 'viem got four subscription ids');
    // Two newHeads and two identical logs filters on one socket: viem keys its handlers by id.
    assert.equal(new Set(tap.results('eth_subscribe')).size, 4, 'distinct subscription ids');

    await fx.mineWithEmits(4, 2);
    const endHead = BigInt(fx.devnet.blockNumber);
    const expected = await fx.emitterLogs(startHead + 1n, endHead);
    await waitFor(
      () =>
        blocks.length >= Number(endHead - startHead) + 1 &&
        blockNumbers.at(-1) === endHead &&
        events.length >= expected.length &&
        contractEvents.length >= expected.length,
      'every block and event delivered',
      {
        state: async () => ({ startHead, endHead, blocks, blockNumbers, events: events.length, contractEvents: contractEvents.length, expectedLogs: expected.length, errors: errors.map(String), evmux: await fx.diagnostics() }),
      },
    );
    await sleep(300); // anything delivered twice would show up now
    assert.deepEqual(errors, []);
    // Both start at startHead: evmux greets each newHeads subscription with the current head.
    // viem's watchBlocks answers each newHeads notification with its own getBlock and calls
    // onBlock in the order those replies arrive; evmux spreads them over three nodes, so the
    // order of the calls may differ from the order of the notifications (watchBlockNumber,
    // fed straight from them, checks the order). Each block must still come exactly once.
    assertBlockSequence([...blocks].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)), startHead, endHead, 'watchBlocks');
    assertBlockSequence(blockNumbers, startHead, endHead, 'watchBlockNumber');
    assertLogSequence(events, expected, 'watchEvent');
    assertLogSequence(contractEvents, expected, 'watchContractEvent');
    assert.ok(values.every((value) => value > 0n), 'Ping values decoded');

    for (const stop of unwatch) stop();
    await waitFor(() => tap.results('eth_unsubscribe').length === 4, 'four eth_unsubscribe answers');
    assert.deepEqual(tap.results('eth_unsubscribe'), [true, true, true, true]);
    await waitFor(async () => (await fx.clientSubscriptions()) === 0, 'evmux_client_subscriptions back to 0');
    await fx.mineWithEmits(1);
    await sleep(200);
    assert.equal(blocks.length, Number(endHead - startHead) + 1, 'nothing delivered after unwatch');
    assert.equal(blockNumbers.at(-1), endHead, 'nothing delivered after unwatch');
  } finally {
    rpc.close();
  }
});

test('viem watchPendingTransactions over webSocket through evmux: every transaction once', async () => {
  const client = createPublicClient({ chain: anvil, cacheTime: 0, transport: webSocket(fx.evmux.wsUrl) });
  const rpc = await client.transport.getRpcClient();
  const seen: string[] = [];
  const errors: Error[] = [];
  const unwatch = client.watchPendingTransactions({ onTransactions: (hashes) => void seen.push(...hashes), onError: (error) => void errors.push(error) });
  try {
    await fx.expectPendingReported(seen, 'watchPendingTransactions');
    assert.deepEqual(errors, []);
  } finally {
    unwatch();
    rpc.close();
  }
});
