import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChainGuard } from '../../src/upstream/chain-guard.js';
import { replyFromObject, resultReply, type UpstreamReply } from '../../src/upstream/reply.js';

test('chain guard: a configured chain is the only one accepted', () => {
  const guard = new ChainGuard(1n);
  assert.equal(guard.chainIdHex, '0x1');
  assert.deepEqual(guard.check('0x1'), { ok: true });
  assert.deepEqual(guard.check('0x01'), { ok: true }, 'leading zeros are the same number');
  assert.deepEqual(guard.check('0xaa36a7'), { ok: false, reason: 'serves chain 11155111, not chain 1 (chainId in the config)' });
});

test('chain guard: unconfigured, the first answer sets the chain', () => {
  const guard = new ChainGuard(undefined);
  assert.equal(guard.chainIdHex, undefined);
  assert.deepEqual(guard.check('0x7A69'), { ok: true });
  assert.equal(guard.chainIdHex, '0x7a69');
  assert.deepEqual(guard.check('0x5'), { ok: false, reason: 'serves chain 5, not chain 31337 (the first node to answer)' });
});

test('chain guard: an answer that is not a chain id is refused and sets nothing', () => {
  const guard = new ChainGuard(undefined);
  assert.deepEqual(guard.check(31337), { ok: false, reason: 'eth_chainId answered 31337, not a chain id' });
  assert.deepEqual(guard.check(null), { ok: false, reason: 'eth_chainId answered null, not a chain id' });
  assert.deepEqual(guard.check('0x'), { ok: false, reason: 'eth_chainId answered "0x", not a chain id' });
  assert.equal(guard.chainIdHex, undefined);
});

/** A node answering the socket check's two questions, and net_version. */
function node(chainId: unknown, genesis: unknown, netVersion: unknown = '31337'): (method: string) => Promise<UpstreamReply> {
  return (method) =>
    Promise.resolve(
      method === 'net_version'
        ? netVersion instanceof Error
          ? replyFromObject({ error: { code: -32601, message: netVersion.message } })
          : resultReply(netVersion)
        : method === 'eth_chainId'
        ? chainId instanceof Error
          ? replyFromObject({ error: { code: -32000, message: chainId.message } })
          : resultReply(chainId)
        : genesis instanceof Error
          ? replyFromObject({ error: { code: -32000, message: genesis.message } })
          : resultReply(genesis),
    );
}

const GENESIS_A = `0x${'aa'.repeat(32)}`;
const GENESIS_B = `0x${'bb'.repeat(32)}`;

test('chain guard: a socket shows its chain id and genesis block; the genesis is held while a socket that showed it is open', async () => {
  const guard = new ChainGuard(undefined);
  const first = await guard.checkSocket(node('0x7a69', { hash: GENESIS_A.toUpperCase().replace('0X', '0x') }));
  assert.equal(first.refusal, undefined);
  const second = await guard.checkSocket(node('0x7a69', { hash: GENESIS_A }));
  assert.equal(second.refusal, undefined, 'hashes compared in one case');
  assert.equal(
    (await guard.checkSocket(node('0x7a69', { hash: GENESIS_B }))).refusal,
    `its genesis block is ${GENESIS_B}, not ${GENESIS_A} (the nodes evmux is connected to): another network with chain id 31337`,
  );
  assert.equal((await guard.checkSocket(node('0x1', { hash: GENESIS_A }))).refusal, 'serves chain 1, not chain 31337 (the first node to answer)');
  assert.deepEqual(await guard.checkSocket(node('0x7a69', null)), {}, 'a node that does not give block 0 is judged by its chain id');
  assert.deepEqual(await guard.checkSocket(node('0x7a69', new Error('pruned'))), {});
  await assert.rejects(guard.checkSocket(node(new Error('method not found'), { hash: GENESIS_A })), /eth_chainId failed: method not found/);

  // Both sockets that showed A close (every node restarted: a devnet's new genesis): B is the chain now.
  first.release!();
  first.release!();
  assert.notEqual((await guard.checkSocket(node('0x7a69', { hash: GENESIS_B }))).refusal, undefined, 'one socket of A still open');
  second.release!();
  const restarted = await guard.checkSocket(node('0x7a69', { hash: GENESIS_B }));
  assert.equal(restarted.refusal, undefined, 'no socket holds A: B is learned anew');
  assert.notEqual((await guard.checkSocket(node('0x7a69', { hash: GENESIS_A }))).refusal, undefined, 'and A is refused while B is held');
});

test('chain guard: the network id is learned from the first socket that passed the check, never from a refused one', async () => {
  const guard = new ChainGuard(undefined);
  const settled = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
  await guard.checkSocket(node('0x7a69', { hash: GENESIS_A }, new Error('the method net_version does not exist/is not available')));
  await settled();
  assert.equal(guard.netVersion, undefined, 'a node without net_version gives none');
  await guard.checkSocket(node('0x7a69', { hash: GENESIS_A }, 31337));
  await settled();
  assert.equal(guard.netVersion, undefined, 'nor one answering something that is not a network id');
  assert.notEqual((await guard.checkSocket(node('0x7a69', { hash: GENESIS_B }, '5'))).refusal, undefined);
  await settled();
  assert.equal(guard.netVersion, undefined, 'nor a node of another network');
  await guard.checkSocket(node('0x7a69', null, '31337'));
  await settled();
  assert.equal(guard.netVersion, '31337', 'a node judged by its chain id alone passed');
  await guard.checkSocket(node('0x7a69', { hash: GENESIS_A }, '1'));
  await settled();
  assert.equal(guard.netVersion, '31337', 'the first stays');
});
