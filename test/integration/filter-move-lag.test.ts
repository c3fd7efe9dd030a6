/**
 * A polled filter moved off its dead node to a node that lacks, for a moment, the head it has just
 * given (a provider's backend a block behind the one that answered eth_blockNumber, a node
 * mid-reorg): the replay's read of that block, refused or answered null, is asked of a node known to
 * have it, and the poll hands over what the client missed. Before, that poll failed with -32050
 * ("… did not give the logs the filter missed: BlockOutOfRangeError …", "… did not give block N,
 * which the filter missed"), and viem's watchers called onError. Real anvil nodes, each behind a
 * relay that answers one such read in all as a node lacking the block does.
 */
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { decodeFilterId } from '../../src/router/filter-id.js';
import { assertLogSequence, logKey, mineWithEmits, waitFor } from '../support/client-fixture.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { MissingBlock, MissingBlockRelay } from '../support/missing-block-relay.js';
import { canonicalHashes, rpcAnswer } from '../support/node-rpc.js';

let closers: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const close of closers.reverse()) await close();
  closers = [];
});

interface Setup {
  devnet: LockstepDevnet;
  evmux: TestGateway;
  missing: MissingBlock;
}

async function behindRelays(): Promise<Setup> {
  const devnet = await LockstepDevnet.start({ nodes: 3, blockTimeMs: 0 });
  closers.push(() => devnet.close());
  const missing = new MissingBlock();
  const relays = await Promise.all(devnet.nodes.map((node) => MissingBlockRelay.start(node.wsUrl, missing)));
  closers.push(() => Promise.all(relays.map((relay) => relay.close())).then(() => undefined));
  const evmux = await startGateway(
    relays.map((relay) => relay.url),
    {},
    { logLevel: process.env.EVMUX_TEST_LOG_LEVEL ?? 'warn' },
  );
  closers.push(() => evmux.close());
  await mineWithEmits(devnet, 2);
  return { devnet, evmux, missing };
}

/** A filter made through evmux, and a poll that adds what it hands over to `received`. */
async function polledFilter(evmux: TestGateway, method: string, params: unknown[]) {
  const made = await rpcAnswer(evmux.httpUrl, method, params);
  assert.equal(made.error, undefined, `${method}: ${JSON.stringify(made.error)}`);
  const filterId = made.result as string;
  const received: unknown[] = [];
  const poll = async (): Promise<void> => {
    const answer = await rpcAnswer(evmux.httpUrl, 'eth_getFilterChanges', [filterId]);
    assert.equal(answer.error, undefined, `eth_getFilterChanges(${filterId}): ${JSON.stringify(answer.error)}`);
    received.push(...(answer.result as unknown[]));
  };
  return { filterId, holder: decodeFilterId(filterId).upstreamIndex, received, poll };
}

/**
 * The filter's node killed, blocks mined on the others, evmux told; then the next read of the head
 * on any node is answered as if that node lacked it, and the filter is polled: its move's replay
 * meets it.
 */
async function killAndPollLacking({ devnet, evmux, missing }: Setup, holder: number, poll: () => Promise<void>): Promise<void> {
  await devnet.kill(holder);
  await mineWithEmits(devnet, 2, 2);
  await waitFor(async () => {
    const status = JSON.parse((await evmux.get('/status')).body) as { upstreams: Array<{ name: string; usable: boolean; head: string }> };
    return status.upstreams.every((upstream) => (upstream.name === `node${holder}` ? !upstream.usable : upstream.head === String(devnet.blockNumber)));
  }, `node${holder} down, the others at the head`);
  missing.arm(BigInt(devnet.blockNumber));
  await poll();
}

test("a logs filter's first poll after its node died hands over what it missed though its new node refuses the head's logs once", async () => {
  const setup = await behindRelays();
  const { devnet, missing } = setup;
  const startHead = BigInt(devnet.blockNumber);
  const { filterId, holder, received, poll } = await polledFilter(setup.evmux, 'eth_newFilter', [{ address: devnet.emitterAddress, topics: [devnet.emitterTopic] }]);
  await mineWithEmits(devnet, 2);
  await poll();

  await killAndPollLacking(setup, holder, poll);
  assert.deepEqual(missing.answered, ['eth_getLogs'], "premise: the move's replay was refused as past the node's head");
  await mineWithEmits(devnet, 1);
  await poll(); // nothing may come twice

  const survivor = devnet.nodes[(holder + 1) % devnet.nodes.length]!;
  const range = { fromBlock: `0x${(startHead + 1n).toString(16)}`, toBlock: `0x${devnet.blockNumber.toString(16)}` };
  const chain = await rpcAnswer(survivor.httpUrl, 'eth_getLogs', [{ address: devnet.emitterAddress, topics: [devnet.emitterTopic], ...range }]);
  const keys = (logs: unknown): string[] => (logs as Array<Parameters<typeof logKey>[0]>).map(logKey);
  assertLogSequence(keys(received), keys(chain.result), `filter ${filterId}, moved off node${holder}`);
});

test("a block filter's first poll after its node died hands over what it missed though its new node answers the head null once", async () => {
  const setup = await behindRelays();
  const { devnet, missing } = setup;
  const startHead = BigInt(devnet.blockNumber);
  const { filterId, holder, received, poll } = await polledFilter(setup.evmux, 'eth_newBlockFilter', []);
  await mineWithEmits(devnet, 2);
  await poll();

  await killAndPollLacking(setup, holder, poll);
  assert.deepEqual(missing.answered, ['eth_getBlockByNumber'], "premise: the move's replay read the head as null");
  await mineWithEmits(devnet, 1);
  await poll(); // nothing may come twice

  const survivor = devnet.nodes[(holder + 1) % devnet.nodes.length]!;
  const expected = [...(await canonicalHashes(survivor.httpUrl, startHead + 1n, BigInt(devnet.blockNumber))).values()];
  assert.deepEqual(received, expected, `filter ${filterId}, moved off node${holder}: every block hash once, in order`);
});
