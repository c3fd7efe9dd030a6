/**
 * Reads of one block when the nodes are not all at it: a node within health.maxLagBlocks is usable,
 * yet a read of a block it has not got yet must go to a node that has it. A single node never
 * answers null, or "block not found", for a block it just reported itself, and eth_blockNumber
 * never answers lower than a serving node's head.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { JsonRpcProvider } from 'ethers';
import { LockstepDevnet } from '../../src/devnet/lockstep-devnet.js';
import { FakeNode } from '../support/fake-node.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { rpc as nodeRpc } from '../support/node-rpc.js';
import { Probe } from '../support/ws-probe.js';

test('eth_getBlockByNumber(head) is never null for a head evmux reported', async () => {
  const devnet = await LockstepDevnet.start({ nodes: 2, blockTimeMs: 0 });
  const evmux = await startGateway(devnet.nodes.map((node) => node.wsUrl));
  const rpc = async (method: string, params: unknown[]): Promise<unknown> => {
    const response = await fetch(evmux.httpUrl, { method: 'POST', body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) });
    return ((await response.json()) as { result: unknown }).result;
  };
  try {
    devnet.hold(1); // node1 one block behind: lag 1 <= maxLagBlocks (5), so still "usable"
    await devnet.mine(1);
    await new Promise((resolve) => setTimeout(resolve, 600)); // let probes see both heads
    let nulls = 0;
    for (let k = 0; k < 20; k++) {
      const head = (await rpc('eth_blockNumber', [])) as string;
      if ((await rpc('eth_getBlockByNumber', [head, false])) === null) nulls++;
    }
    assert.equal(nulls, 0, `${nulls} of 20 eth_getBlockByNumber(<head evmux just reported>) answered null`);
  } finally {
    await evmux.close();
    await devnet.close();
  }
});

/** A devnet of three with node2 held (so it stays behind), evmux in front; closed after the test. */
async function heldBehind(t: TestContext, overrides: Parameters<typeof startGateway>[1]): Promise<{ devnet: LockstepDevnet; evmux: TestGateway }> {
  const devnet = await LockstepDevnet.start({ nodes: 3, blockTimeMs: 0 });
  await devnet.mine(2);
  const evmux = await startGateway(
    devnet.nodes.map((node) => node.wsUrl),
    overrides,
  );
  t.after(async () => {
    await evmux.close();
    await devnet.close();
  });
  await until(async () => (await upstreams(evmux)).every((upstream) => upstream.usable && upstream.head === String(devnet.blockNumber)), 'every node usable at the head');
  devnet.hold(2);
  return { devnet, evmux };
}

interface UpstreamState {
  name: string;
  usable: boolean;
  head: string | null;
  lag: number | null;
}

async function upstreams(evmux: TestGateway): Promise<UpstreamState[]> {
  return (JSON.parse((await evmux.get('/status')).body) as { upstreams: UpstreamState[] }).upstreams;
}

async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await condition())) {
    assert.ok(Date.now() < deadline, `${what}: not within 10 s`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Several calls at once, in one batch: least connections spreads them over every node. */
async function batch(evmux: TestGateway, calls: Array<[string, unknown[]]>): Promise<Array<{ result?: unknown; error?: { message: string } }>> {
  const body = JSON.stringify(calls.map(([method, params], id) => ({ jsonrpc: '2.0', id, method, params })));
  const response = await fetch(evmux.httpUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  return ((await response.json()) as Array<{ id: number; result?: unknown; error?: { message: string } }>).sort((a, b) => a.id - b.id);
}

test('a head a node gave in an answer to eth_blockNumber, before any probe saw it: that block is read from a node that has it', async (t) => {
  // Probes only when a socket opens: between them, evmux knows heads from what nodes answer.
  const { devnet, evmux } = await heldBehind(t, { health: { probeIntervalMs: 60_000 } });
  await devnet.mine(1);
  const head = `0x${devnet.blockNumber.toString(16)}`;
  const reported = await batch(evmux, [['eth_blockNumber', []], ['eth_blockNumber', []], ['eth_blockNumber', []]]);
  assert.ok(reported.some((answer) => answer.result === head), `evmux reported ${JSON.stringify(reported)}, the head is ${head}`);
  const reads: Array<[string, unknown[]]> = [];
  for (let i = 0; i < 3; i++) {
    reads.push(['eth_getBlockByNumber', [head, false]], ['eth_getBalance', [devnet.emitterAddress, head]], ['eth_call', [{ to: devnet.emitterAddress }, head]]);
  }
  const answers = await batch(evmux, reads);
  const wrong = answers.map((answer, i) => [reads[i]![0], answer] as const).filter(([, answer]) => answer.error !== undefined || answer.result === null);
  assert.deepEqual(wrong, [], 'every read of the head evmux reported is answered');
});

test('a read by block hash (EIP-1898) that a lagging node cannot serve is asked of a node ahead', async (t) => {
  const { devnet, evmux } = await heldBehind(t, {});
  await devnet.mine(3);
  await until(async () => (await upstreams(evmux)).find((upstream) => upstream.name === 'node2')?.lag === 3, 'node2 three blocks behind');
  const newest = (await devnet.head(0)).hash;
  const reads: Array<[string, unknown[]]> = [];
  for (let i = 0; i < 3; i++) {
    reads.push(
      ['eth_getBalance', [devnet.emitterAddress, { blockHash: newest }]],
      ['eth_getCode', [devnet.emitterAddress, { blockHash: newest, requireCanonical: true }]],
      ['eth_getBlockTransactionCountByHash', [newest]],
    );
  }
  const answers = await batch(evmux, reads);
  const direct = await Promise.all(reads.map(([method, params]) => nodeRpc(devnet.nodes[0]!.httpUrl, method, params)));
  assert.deepEqual(answers.map((answer) => answer.result ?? answer.error), direct, 'each as node0 answers it');
});

test('eth_blockNumber never goes back: a node a block behind is answered with the highest serving head', async (t) => {
  const { devnet, evmux } = await heldBehind(t, {});
  await devnet.mine(1);
  await until(async () => (await upstreams(evmux)).find((upstream) => upstream.name === 'node2')?.lag === 1, 'node2 one block behind');
  const head = `0x${devnet.blockNumber.toString(16)}`;
  // One at a time: least connections rotates among idle nodes, so node2 gets a third of them.
  const answers: unknown[] = [];
  for (let k = 0; k < 30; k++) answers.push((await batch(evmux, [['eth_blockNumber', []]]))[0]!.result);
  assert.deepEqual(answers.filter((answer) => answer !== head), [], `every answer is the head ${head}`);
});

test("ethers' block polling over HTTP reports each block once while a node is behind", async (t) => {
  const { devnet, evmux } = await heldBehind(t, {});
  const provider = new JsonRpcProvider(evmux.httpUrl, undefined, { cacheTimeout: -1, pollingInterval: 20, staticNetwork: true });
  t.after(() => provider.destroy());
  const seen: number[] = [];
  await provider.on('block', (number: number) => seen.push(number));
  for (let k = 0; k < 4; k++) {
    await devnet.mine(1);
    await new Promise((resolve) => setTimeout(resolve, 400));
  }
  await until(async () => seen.includes(devnet.blockNumber), `block ${devnet.blockNumber} reported`);
  const repeated = seen.filter((number, i) => seen.indexOf(number) !== i);
  assert.deepEqual(repeated, [], `blocks reported more than once in ${JSON.stringify(seen)}`);
});

test('reads of "latest" while a node is behind are answered at the highest head: blocks, and logs up to it', async (t) => {
  const { devnet, evmux } = await heldBehind(t, {});
  await devnet.mine(2);
  await until(async () => (await upstreams(evmux)).find((upstream) => upstream.name === 'node2')?.lag === 2, 'node2 two blocks behind');
  const head = devnet.blockNumber;
  const filter = { address: devnet.emitterAddress, fromBlock: `0x${(head - 1).toString(16)}` };
  const expected = (await nodeRpc(devnet.nodes[0]!.httpUrl, 'eth_getLogs', [filter])) as unknown[];
  assert.ok(expected.length > 0, 'the last two blocks have logs');
  const wrong: string[] = [];
  // One at a time: least connections rotates among idle nodes, so node2 would get a third of them.
  for (let k = 0; k < 15; k++) {
    const [block, logs] = await batch(evmux, [['eth_getBlockByNumber', ['latest', false]], ['eth_getLogs', [filter]]]);
    const number = Number((block!.result as { number: string }).number);
    if (number !== head) wrong.push(`latest block ${number}`);
    if ((logs!.result as unknown[]).length !== expected.length) wrong.push(`${(logs!.result as unknown[]).length} logs of ${expected.length}`);
  }
  assert.deepEqual(wrong, [], `every read at head ${head}`);
});

test('a read of a recent block while a node is still on the branch a reorg replaced: answered from the new branch', async (t) => {
  const { devnet, evmux } = await heldBehind(t, {});
  await devnet.mine(1); // node2 stays a block behind, at 3
  const stale = devnet.blockNumber - 1;
  await devnet.reorg(2); // 3 and 4 replaced: node2's head is orphaned, two below the new head 5
  await until(async () => (await upstreams(evmux)).find((upstream) => upstream.name === 'node2')?.lag === 2, 'node2 two blocks behind');
  const height = `0x${stale.toString(16)}`;
  const canonical = ((await nodeRpc(devnet.nodes[0]!.httpUrl, 'eth_getBlockByNumber', [height, false])) as { hash: string }).hash;
  const hashes: string[] = [];
  for (let k = 0; k < 15; k++) hashes.push(((await batch(evmux, [['eth_getBlockByNumber', [height, false]]]))[0]!.result as { hash: string }).hash);
  assert.deepEqual(hashes.filter((hash) => hash !== canonical), [], `block ${stale} is ${canonical} on the chain the nodes ahead hold`);
});

test('after a node replaced the head block at its height, reads of it go to that node, not to one still holding the replaced block', async (t) => {
  // The most common reorg: one block replaced at the same height. The other node keeps the old one.
  const nodes = await Promise.all([0, 1].map(() => FakeNode.start({ seed: 'same-height-reorg' })));
  t.after(() => Promise.all(nodes.map((node) => node.close())));
  const evmux = await startGateway(nodes.map((node) => node.url));
  t.after(() => evmux.close());
  const client = await Probe.open(evmux.wsUrl, t);
  const subscription = await client.call('eth_subscribe', ['newHeads']);
  assert.equal((await client.notification(subscription))['number'], '0x64');
  for (const node of nodes) node.advance(1);
  assert.equal((await client.notification(subscription))['number'], '0x65');
  await until(async () => (await upstreams(evmux)).every((upstream) => upstream.head === '101'), 'both nodes at 101');
  const streamed = nodes.find((node) => node.sockets().some((socket) => socket.subscriptions > 0));
  assert.ok(streamed !== undefined, 'a node carries the stream');
  const orphaned = streamed.head.hash;
  streamed.reorg(1, 0);
  const replacement = await client.notification(subscription);
  assert.deepEqual([replacement['number'], replacement['hash']], ['0x65', streamed.head.hash]);
  assert.notEqual(streamed.head.hash, orphaned);
  const answers: string[] = [];
  for (let k = 0; k < 16; k++) {
    answers.push(((await client.call('eth_getBlockByNumber', ['0x65', false])) as { hash: string }).hash);
    answers.push(((await client.call('eth_getBlockByNumber', ['latest', false])) as { hash: string }).hash);
  }
  assert.deepEqual(answers.filter((hash) => hash !== streamed.head.hash), [], 'every read of the head answered with the block the client was sent');
  // Once a higher block is known, heights decide again: the other node, at it, serves too.
  for (const node of nodes) node.advance(1);
  await until(async () => (await upstreams(evmux)).every((upstream) => upstream.head === '102'), 'both nodes at 102');
  const before = nodes.map((node) => node.stats.requests.get('eth_getBlockByNumber') ?? 0);
  // At once: least connections spreads them (one after another, the node that answered faster of late takes each).
  await Promise.all(Array.from({ length: 16 }, () => client.call('eth_getBlockByNumber', ['0x66', false])));
  assert.ok(nodes.every((node, i) => (node.stats.requests.get('eth_getBlockByNumber') ?? 0) > before[i]!), 'both nodes read');
});

test('a node that rewinds (evm_revert, a reorg to a shorter branch) while its newHeads stream is open: eth_blockNumber and /status follow it down', async (t) => {
  const node = await FakeNode.start({ seed: 'rewind' });
  t.after(() => node.close());
  const evmux = await startGateway([node.url]);
  t.after(() => evmux.close());
  const client = await Probe.open(evmux.wsUrl, t);
  const subscription = await client.call('eth_subscribe', ['newHeads']);
  await client.notification(subscription);
  node.advance(8);
  await until(async () => (await upstreams(evmux)).every((upstream) => upstream.head === '108'), 'the stream brought 108');
  node.reorg(8, -7); // back to 101, on a new block
  await until(async () => (await client.call('eth_blockNumber')) === '0x65', 'eth_blockNumber at the node\'s head, 101');
  assert.deepEqual((await upstreams(evmux)).map((upstream) => [upstream.head, upstream.usable]), [['101', true]]);
  assert.equal(((await client.call('eth_getBlockByNumber', ['latest', false])) as { number: string }).number, '0x65');
  // A stale head repeated on the stream alone does not pull the height back.
  node.advance(1);
  await until(async () => (await client.call('eth_blockNumber')) === '0x66', 'the chain grows again');
  node.notifyHead(node.header(101n)!);
  await new Promise((resolve) => setTimeout(resolve, 600));
  assert.equal(await client.call('eth_blockNumber'), '0x66');
});

test('a block a client was handed as latest by eth_getBlockReceipts, eth_feeHistory or eth_getTransactionByBlockNumberAndIndex is read from a node that has it', async (t) => {
  const devnet = await LockstepDevnet.start({ nodes: 3, blockTimeMs: 0 });
  const evmux = await startGateway(devnet.nodes.map((node) => node.wsUrl), { health: { probeIntervalMs: 60_000 } });
  t.after(async () => {
    await evmux.close();
    await devnet.close();
  });
  await until(async () => (await upstreams(evmux)).every((upstream) => upstream.usable), 'every node usable');
  // Two of three nodes a block behind, still usable; no probe tells evmux of node0's new head.
  devnet.hold(1);
  devnet.hold(2);
  const learned = (result: unknown, method: string): bigint => {
    if (method === 'eth_feeHistory') {
      const { oldestBlock, gasUsedRatio } = result as { oldestBlock: string; gasUsedRatio: unknown[] };
      return BigInt(oldestBlock) + BigInt(gasUsedRatio.length) - 1n;
    }
    const entry = (Array.isArray(result) ? result.at(-1) : result) as { blockNumber: string };
    return BigInt(entry.blockNumber);
  };
  const misses: string[] = [];
  for (const [method, params] of [
    ['eth_getBlockReceipts', ['latest']],
    ['eth_feeHistory', ['0x1', 'latest', []]],
    ['eth_getTransactionByBlockNumberAndIndex', ['latest', '0x0']],
  ] as Array<[string, unknown[]]>) {
    for (let round = 0; round < 4; round++) {
      devnet.queueEmit();
      await devnet.mine(1);
      for (let read = 0; read < 3; read++) {
        const answers = await batch(evmux, [[method, params]]);
        const head = learned(answers[0]!.result, method);
        const [block] = await batch(evmux, [['eth_getBlockByNumber', [`0x${head.toString(16)}`, false]]]);
        if (block?.result === null || block?.error !== undefined) misses.push(`${method}: block ${head} ${JSON.stringify(block)}`);
      }
    }
  }
  assert.deepEqual(misses, []);
});
