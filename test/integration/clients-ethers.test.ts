/**
 * ethers v6, unchanged, through evmux (JsonRpcProvider and WebSocketProvider): every call answers
 * what node0 answers directly, a signed transaction gets mined, JsonRpcProvider batching works,
 * and `provider.on('block')`, `on('pending')` and a log filter over WebSocketProvider see
 * everything exactly once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { JsonRpcProvider, Wallet, WebSocketProvider, type Log, type Provider, type WebSocketLike } from 'ethers';
import WebSocket from 'ws';
import { emitterCallData } from '../../src/devnet/emitter-contract.js';
import {
  assertBlockSequence,
  assertLogSequence,
  logKey,
  plain,
  SocketTap,
  startClientFixture,
  waitFor,
  type ClientFixture,
  type LogKey,
} from '../support/client-fixture.js';

let fx: ClientFixture;

before(async () => {
  fx = await startClientFixture();
  await fx.mineWithEmits(2, 2);
});

after(async () => {
  await fx?.close();
});

/** cacheTimeout -1: ethers would otherwise answer a repeated call from a 250 ms cache. */
const HTTP_OPTIONS = { cacheTimeout: -1, pollingInterval: 50 } as const;

function httpProvider(url: string, batchMaxCount = 1): JsonRpcProvider {
  return new JsonRpcProvider(url, undefined, { ...HTTP_OPTIONS, batchMaxCount });
}

/** A WebSocketProvider on a `ws` socket the test can tap. */
function wsProvider(url: string): { provider: WebSocketProvider; tap: SocketTap } {
  const socket = new WebSocket(url);
  const tap = new SocketTap(socket);
  const provider = new WebSocketProvider(socket as unknown as WebSocketLike, undefined, { cacheTimeout: -1 });
  return { provider, tap };
}

interface ProviderPair {
  evmux: Provider;
  direct: Provider;
  close(): Promise<void>;
}

function openPair(kind: 'JsonRpcProvider' | 'WebSocketProvider'): ProviderPair {
  if (kind === 'JsonRpcProvider') {
    const evmux = httpProvider(fx.evmux.httpUrl);
    const direct = httpProvider(fx.direct.httpUrl);
    return {
      evmux,
      direct,
      close: async () => {
        evmux.destroy();
        direct.destroy();
      },
    };
  }
  const evmux = wsProvider(fx.evmux.wsUrl).provider;
  const direct = wsProvider(fx.direct.wsUrl).provider;
  return {
    evmux,
    direct,
    close: async () => {
      await evmux.destroy();
      await direct.destroy();
    },
  };
}

for (const kind of ['JsonRpcProvider', 'WebSocketProvider'] as const) {
  describe(`ethers ${kind} through evmux`, () => {
    let pair: ProviderPair;
    before(() => {
      pair = openPair(kind);
    });
    after(async () => {
      await pair?.close();
    });

    /** Run the same query on evmux and on node0; they must agree (compared as JSON). */
    async function same<T>(query: (provider: Provider) => Promise<T>): Promise<T> {
      const [viaEvmux, direct] = await Promise.all([query(pair.evmux), query(pair.direct)]);
      assert.deepEqual(plain(viaEvmux), plain(direct));
      return viaEvmux;
    }

    test('chainId, getBlockNumber, getBalance', async () => {
      assert.equal((await same((p) => p.getNetwork())).chainId, BigInt(fx.devnet.chainId));
      assert.equal(await same((p) => p.getBlockNumber()), fx.devnet.blockNumber);
      const wallet = new Wallet(fx.devnet.testAccountKey);
      assert.ok((await same((p) => p.getBalance(wallet.address))) > 0n);
      assert.equal(await same((p) => p.getBalance(fx.devnet.emitterAddress, 1)), 0n);
    });

    test('getBlock by number and by hash, with and without transactions', async () => {
      const head = fx.devnet.blockNumber;
      const light = await same((p) => p.getBlock(head));
      assert.ok(light !== null);
      assert.equal(light.number, head);
      assert.ok(light.transactions.length > 0, 'devnet traffic is in every block');
      const full = await same((p) => p.getBlock(head, true));
      assert.ok(full !== null);
      const fullTxs = await same(async (p) => (await p.getBlock(head, true))?.prefetchedTransactions);
      assert.equal(fullTxs?.[0]?.hash, light.transactions[0]);
      assert.ok(light.hash !== null);
      const hash = light.hash;
      assert.deepEqual(plain(await same((p) => p.getBlock(hash))), plain(light));
      const fullByHash = await same(async (p) => (await p.getBlock(hash, true))?.prefetchedTransactions);
      assert.deepEqual(plain(fullByHash), plain(fullTxs));
      assert.equal((await same((p) => p.getBlock('latest')))?.hash, hash);
    });

    test('call and estimateGas on the emitter contract', async () => {
      const counter = await same((p) => p.call({ to: fx.devnet.emitterAddress, data: '0x' }));
      assert.equal(counter.length, 66, '32-byte counter');
      assert.ok(BigInt(counter) > 0n, 'the devnet emitted pings already');
      const from = new Wallet(fx.devnet.testAccountKey).address;
      const gas = await same((p) => p.estimateGas({ from, to: fx.devnet.emitterAddress, data: emitterCallData(42n) }));
      assert.ok(gas > 21_000n);
    });

    test('getLogs of the emitter', async () => {
      const head = fx.devnet.blockNumber;
      const logs = await same((p) => p.getLogs({ address: fx.devnet.emitterAddress, topics: [fx.devnet.emitterTopic], fromBlock: 1, toBlock: head }));
      assert.deepEqual(logs.map(logKey), await fx.emitterLogs(1n, BigInt(head)));
    });

    test('a signed transaction broadcast with broadcastTransaction is mined and its receipt matches node0', async () => {
      const wallet = new Wallet(fx.devnet.testAccountKey, pair.evmux);
      // nonce, gas, fees and chain id come from evmux through ethers' own population.
      const request = await wallet.populateTransaction({ to: fx.devnet.emitterAddress, data: emitterCallData(7n) });
      const raw = (await wallet.signTransaction(request)) as `0x${string}`;
      const expectedHash = fx.queueClientTransaction(raw);
      const response = await pair.evmux.broadcastTransaction(raw);
      assert.equal(response.hash, expectedHash);
      await fx.devnet.mine(1);
      const receipt = await response.wait(1, 10_000);
      assert.ok(receipt !== null);
      assert.equal(receipt.status, 1);
      assert.equal(receipt.blockNumber, fx.devnet.blockNumber);
      assert.equal(receipt.logs.length, 1, 'the emitter logged one Ping');
      assert.deepEqual(plain(receipt), plain(await pair.direct.getTransactionReceipt(response.hash)));
      const tx = await same((p) => p.getTransaction(response.hash));
      assert.equal(tx?.from, wallet.address);
      assert.equal(tx?.nonce, request.nonce);
    });
  });
}

test('ethers JsonRpcProvider batches concurrent calls into one JSON-RPC batch and gets node0 results', async () => {
  const batched = httpProvider(fx.evmux.httpUrl, 10);
  const direct = httpProvider(fx.direct.httpUrl);
  try {
    await batched.getNetwork(); // network detection happens first, outside the batch under test
    const payloads: unknown[] = [];
    await batched.on('debug', (event: { action: string; payload?: unknown }) => {
      if (event.action === 'sendRpcPayload') payloads.push(event.payload);
    });
    const from = new Wallet(fx.devnet.testAccountKey).address;
    const head = fx.devnet.blockNumber;
    const queries = (p: Provider) =>
      Promise.all([
        p.getBlockNumber(),
        p.getBalance(from),
        p.getBlock(head),
        p.call({ to: fx.devnet.emitterAddress, data: '0x' }),
        p.getLogs({ address: fx.devnet.emitterAddress, fromBlock: 1, toBlock: head }),
      ]);
    const viaEvmux = await queries(batched);
    assert.deepEqual(plain(viaEvmux), plain(await queries(direct)));
    await waitFor(() => payloads.length > 0, 'ethers debug events');
    assert.ok(
      payloads.some((payload) => Array.isArray(payload) && payload.length >= 5),
      `a batch of five calls was sent (payloads: ${JSON.stringify(payloads)})`,
    );
  } finally {
    batched.destroy();
    direct.destroy();
  }
});

test("ethers WebSocketProvider on('block') and a log filter through evmux", async () => {
  const { provider, tap } = wsProvider(fx.evmux.wsUrl);
  try {
    await provider.getBlockNumber(); // connected
    const blocks: bigint[] = [];
    const logs: LogKey[] = [];
    const filter = { address: fx.devnet.emitterAddress, topics: [fx.devnet.emitterTopic] };
    const onBlock = (n: number): void => void blocks.push(BigInt(n));
    const onLog = (log: Log): void => void logs.push(logKey(log));
    const startHead = BigInt(fx.devnet.blockNumber);
    await provider.on('block', onBlock);
    await provider.on(filter, onLog);
    await waitFor(async () => (await fx.clientSubscriptions()) === 2, 'two client subscriptions in evmux');
    await waitFor(() => tap.results('eth_subscribe').length === 2, 'ethers got both subscription ids');

    await fx.mineWithEmits(4, 2);
    const endHead = BigInt(fx.devnet.blockNumber);
    const expected = await fx.emitterLogs(startHead + 1n, endHead);
    await waitFor(() => blocks.at(-1) === endHead && logs.length >= expected.length, 'every block and event delivered', {
      state: async () => ({ startHead, endHead, blocks, logs: logs.length, expectedLogs: expected.length, evmux: await fx.diagnostics() }),
    });
    await sleep(300); // anything delivered twice would show up now
    assertBlockSequence(blocks, startHead, endHead, "on('block')");
    assertLogSequence(logs, expected, 'log filter');

    await provider.off('block', onBlock);
    await provider.off(filter, onLog);
    await waitFor(() => tap.results('eth_unsubscribe').length === 2, 'two eth_unsubscribe answers');
    assert.deepEqual(tap.results('eth_unsubscribe'), [true, true]);
    await waitFor(async () => (await fx.clientSubscriptions()) === 0, 'evmux_client_subscriptions back to 0');
    await fx.mineWithEmits(1);
    await sleep(200);
    assert.equal(blocks.at(-1), endHead, 'nothing delivered after off()');
  } finally {
    await provider.destroy();
  }
});

test("ethers WebSocketProvider on('pending') through evmux: every transaction once", async () => {
  const { provider, tap } = wsProvider(fx.evmux.wsUrl);
  try {
    await provider.getBlockNumber(); // connected
    const seen: string[] = [];
    const onPending = (hash: string): void => void seen.push(hash);
    await provider.on('pending', onPending);
    await fx.expectPendingReported(seen, "on('pending')");
    await provider.off('pending', onPending);
    await waitFor(() => tap.results('eth_unsubscribe').length === 1, 'the eth_unsubscribe answer');
    assert.deepEqual(tap.results('eth_unsubscribe'), [true]);
  } finally {
    await provider.destroy();
  }
});
