import { performance } from 'node:perf_hooks';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { MAX_REFUSED_FILTERS, REFUSAL_MS, SessionAffinity } from '../../src/subs/affinity.js';
import type { UpstreamPool } from '../../src/upstream/pool.js';
import type { Upstream } from '../../src/upstream/upstream.js';

/** Just what SessionAffinity asks of the pool: which nodes are usable, and since when. */
class StubPool extends EventEmitter {
  readonly upstreams: Upstream[];
  readonly since = new Map<Upstream, number>();
  constructor(names: string[], fallbacks: string[] = []) {
    super();
    this.upstreams = names.map((name) => ({ name, weight: 1, role: fallbacks.includes(name) ? 'fallback' : 'primary' }) as Upstream);
    for (const upstream of this.upstreams) this.since.set(upstream, 0);
  }
  byName(name: string): Upstream | undefined {
    return this.upstreams.find((upstream) => upstream.name === name);
  }
  isUsable(upstream: Upstream): boolean {
    return this.since.has(upstream);
  }
  usableSince(upstream: Upstream): number | undefined {
    return this.since.get(upstream);
  }
  usableFor(upstream: Upstream, ms: number): boolean {
    const since = this.since.get(upstream);
    return since !== undefined && performance.now() - since >= ms;
  }
  set(name: string, usable: boolean, since = performance.now()): void {
    const upstream = this.byName(name)!;
    if (usable) this.since.set(upstream, since);
    else this.since.delete(upstream);
    this.emit('changed');
  }
}

const KEYS = Array.from({ length: 300 }, (_, i) => `key-${i}`);
const HEADS = { kind: 'newHeads', streamKey: 'newHeads' } as const;
const LOGS_A = { kind: 'logs', streamKey: 'logs:{"address":["0x00000000000000000000000000000000000000aa"]}' } as const;
const LOGS_B = { kind: 'logs', streamKey: 'logs:{"address":["0x00000000000000000000000000000000000000bb"]}' } as const;

function owners(affinity: SessionAffinity): Map<string, string | undefined> {
  return new Map(KEYS.map((key) => [key, affinity.owner(key)?.name]));
}

describe('SessionAffinity', () => {
  it('after every node was down, the first back takes every key until the others\' hold-down ends: each key moves once more, not three times', async () => {
    const pool = new StubPool(['node0', 'node1', 'node2']);
    const affinity = new SessionAffinity(pool as unknown as UpstreamPool, 150);
    const before = owners(affinity);
    for (const name of ['node0', 'node1', 'node2']) pool.set(name, false);
    const moves = new Map<string, number>(KEYS.map((key) => [key, 0]));
    let last = owners(affinity);
    const step = (): void => {
      const now = owners(affinity);
      for (const key of KEYS) if (now.get(key) !== last.get(key) && last.get(key) !== undefined) moves.set(key, moves.get(key)! + 1);
      last = now;
    };
    pool.set('node1', true);
    step();
    assert.deepEqual(new Set(last.values()), new Set(['node1']), 'the only node back');
    await new Promise((resolve) => setTimeout(resolve, 50));
    pool.set('node0', true);
    step();
    assert.deepEqual(new Set(last.values()), new Set(['node1']), 'node0 is back in its hold-down: node1, back longest, keeps every key');
    await new Promise((resolve) => setTimeout(resolve, 120));
    step();
    assert.deepEqual(new Set(last.values()), new Set(['node1']), 'node1 past its hold-down, node0 not yet');
    await new Promise((resolve) => setTimeout(resolve, 100));
    pool.set('node2', true, performance.now() - 1000);
    step();
    assert.deepEqual(last, before, 'all past their hold-down: every key on its own node');
    assert.ok([...moves.values()].every((count) => count <= 1), 'no key moved more than once after the first node came back');
  });

  it('a fallback owns keys only while no primary is eligible, and a returning primary takes them back after hold-down', async () => {
    const pool = new StubPool(['node0', 'node1', 'node2'], ['node2']);
    const affinity = new SessionAffinity(pool as unknown as UpstreamPool, 100);
    assert.deepEqual(new Set(owners(affinity).values()), new Set(['node0', 'node1']));
    pool.set('node0', false);
    assert.deepEqual(new Set(owners(affinity).values()), new Set(['node1']), 'one primary is enough');
    pool.set('node1', false);
    assert.deepEqual(new Set(owners(affinity).values()), new Set(['node2']));
    pool.set('node0', true);
    assert.deepEqual(new Set(owners(affinity).values()), new Set(['node2']), 'node0 is in hold-down: the fallback keeps the keys');
    await new Promise((resolve) => setTimeout(resolve, 120));
    assert.deepEqual(new Set(owners(affinity).values()), new Set(['node0']));
  });

  it('a node marked faulty owns no keys; only its keys move', () => {
    const pool = new StubPool(['node0', 'node1', 'node2']);
    const affinity = new SessionAffinity(pool as unknown as UpstreamPool, 1000);
    const before = owners(affinity);
    assert.equal(new Set(before.values()).size, 3);
    affinity.setFaulty(pool.byName('node1')!, true);
    const during = owners(affinity);
    for (const [key, owner] of before) {
      if (owner === 'node1') assert.notEqual(during.get(key), 'node1');
      else assert.equal(during.get(key), owner, `${key} stays`);
    }
  });

  it('after the mark is cleared the node gets its keys back only after hold-down', async () => {
    const pool = new StubPool(['node0', 'node1', 'node2']);
    const affinity = new SessionAffinity(pool as unknown as UpstreamPool, 100);
    const before = owners(affinity);
    const node1 = pool.byName('node1')!;
    affinity.setFaulty(node1, true);
    affinity.setFaulty(node1, false);
    assert.equal([...owners(affinity).values()].filter((owner) => owner === 'node1').length, 0, 'still in hold-down');
    await new Promise((resolve) => setTimeout(resolve, 120));
    assert.deepEqual(owners(affinity), before, 'exactly the old mapping again');
  });

  it('a faulty node is still better than none', () => {
    const pool = new StubPool(['node0', 'node1']);
    const affinity = new SessionAffinity(pool as unknown as UpstreamPool, 1000);
    pool.set('node0', false);
    affinity.setFaulty(pool.byName('node1')!, true);
    assert.equal(affinity.owner('anything')?.name, 'node1');
    pool.set('node1', false);
    assert.equal(affinity.owner('anything'), undefined);
  });

  it('a node back from an outage waits out hold-down unless nothing else is usable', () => {
    const pool = new StubPool(['node0', 'node1']);
    const affinity = new SessionAffinity(pool as unknown as UpstreamPool, 60_000);
    const home = KEYS.find((key) => affinity.owner(key)?.name === 'node0')!;
    pool.set('node0', false);
    assert.equal(affinity.owner(home)?.name, 'node1');
    pool.set('node0', true);
    assert.equal(affinity.owner(home)?.name, 'node1', 'in hold-down');
    pool.set('node1', false);
    assert.equal(affinity.owner(home)?.name, 'node0', 'in hold-down, but the only usable node');
  });

  it('its state changes whenever an owner may change, hold-down expiry included, and only then', async () => {
    const pool = new StubPool(['node0', 'node1', 'node2']);
    const affinity = new SessionAffinity(pool as unknown as UpstreamPool, 100);
    const seen: { state: string; owners: Map<string, string | undefined> }[] = [];
    const look = (): string => {
      const state = affinity.state();
      const now = owners(affinity);
      // Two looks with one state must see one mapping: a rebalance skipped under it misses nothing.
      for (const earlier of seen) if (earlier.state === state) assert.deepEqual(now, earlier.owners, `state ${state}`);
      seen.push({ state, owners: now });
      return state;
    };
    const start = look();
    assert.equal(look(), start, 'nothing happened');
    pool.set('node1', false);
    const down = look();
    assert.notEqual(down, start, 'a node went away');
    pool.set('node1', true);
    const back = look();
    assert.notEqual(back, down, 'usable again, in hold-down');
    affinity.setFaulty(pool.byName('node2')!, true);
    const faulty = look();
    assert.notEqual(faulty, back, 'a node marked faulty');
    affinity.setFaulty(pool.byName('node2')!, false);
    const cleared = look();
    assert.notEqual(cleared, faulty, 'the mark cleared, in hold-down');
    await new Promise((resolve) => setTimeout(resolve, 120));
    assert.equal(look(), start, 'hold-down over: by time alone, no event');
  });
  it('a node that refused a filter owns no keys for it, only its keys of that filter move, and it is asked again after REFUSAL_MS', () => {
    const pool = new StubPool(['node0', 'node1', 'node2']);
    const affinity = new SessionAffinity(pool as unknown as UpstreamPool, 1000);
    const node1 = pool.byName('node1')!;
    const before = owners(affinity);
    const stateBefore = affinity.state();
    affinity.refused(node1, { streamKey: LOGS_A.streamKey }, 'logs', new Error('refused'));
    const during = affinity.state();
    assert.notEqual(during, stateBefore, 'a refusal changes the state the rebalance watches');
    for (const key of KEYS) {
      const logsOwner = affinity.owner(key, LOGS_A)?.name;
      if (before.get(key) === 'node1') assert.notEqual(logsOwner, 'node1', `${key}: that filter goes elsewhere`);
      else assert.equal(logsOwner, before.get(key), `${key}: keys of other nodes stay`);
      assert.equal(affinity.owner(key, LOGS_B)?.name, before.get(key), `${key}: other filters of the kind stay`);
      assert.equal(affinity.owner(key, HEADS)?.name, before.get(key), `${key}: other kinds stay`);
      assert.equal(affinity.owner(key)?.name, before.get(key), `${key}: calls stay`);
    }
    assert.deepEqual(affinity.refusedKinds(node1), ['logs']);
    assert.equal(affinity.refuses(node1, LOGS_A, performance.now() + REFUSAL_MS - 1000), true);
    assert.equal(affinity.refuses(node1, LOGS_A, performance.now() + REFUSAL_MS + 1), false, 'asked again once the refusal is old');
    assert.notEqual(affinity.state(), during, 'and its end changes the state again');
  });

  it('a refusal of a whole kind (a node with no newHeads has no logs either) covers every filter of it', () => {
    const pool = new StubPool(['node0', 'node1']);
    const affinity = new SessionAffinity(pool as unknown as UpstreamPool, 1000);
    const node0 = pool.byName('node0')!;
    affinity.refused(node0, { kind: 'logs' }, 'logs', new Error('refused'));
    assert.equal(affinity.refuses(node0, LOGS_A), true);
    assert.equal(affinity.refuses(node0, LOGS_B), true);
    assert.equal(affinity.refuses(node0, HEADS), false);
  });

  it('past MAX_REFUSED_FILTERS refused filters a node is passed over for the whole kind, and the state stays short', () => {
    const pool = new StubPool(['node0', 'node1']);
    const affinity = new SessionAffinity(pool as unknown as UpstreamPool, 1000);
    const node0 = pool.byName('node0')!;
    const big = (i: number): { kind: 'logs'; streamKey: string } => ({ kind: 'logs', streamKey: `logs:{"address":["${i}${'0'.repeat(40_000)}"]}` });
    for (let i = 0; i < MAX_REFUSED_FILTERS; i++) affinity.refused(node0, { streamKey: big(i).streamKey }, 'logs', new Error('refused'));
    assert.equal(affinity.refuses(node0, LOGS_A), false, 'each filter on its own so far');
    assert.ok(affinity.state().length < 100, 'the state names no filter');
    affinity.refused(node0, { streamKey: big(MAX_REFUSED_FILTERS).streamKey }, 'logs', new Error('refused'));
    assert.equal(affinity.refuses(node0, LOGS_A), true, 'past the cap: every logs filter');
    assert.equal(affinity.refuses(node0, HEADS), false);
  });

  it('with every node refusing a filter, no node owns it', () => {
    const pool = new StubPool(['node0', 'node1']);
    const affinity = new SessionAffinity(pool as unknown as UpstreamPool, 1000);
    const pending = { kind: 'newPendingTransactions', streamKey: 'newPendingTransactions:true' } as const;
    for (const upstream of pool.upstreams) affinity.refused(upstream, { streamKey: pending.streamKey }, pending.kind, new Error('refused'));
    assert.equal(affinity.owner('key-1', pending), undefined);
    assert.notEqual(affinity.owner('key-1', { kind: 'newPendingTransactions', streamKey: 'newPendingTransactions' }), undefined, 'the plain form is still served');
    assert.notEqual(affinity.owner('key-1', HEADS), undefined);
  });

  it('a node whose stream of a filter keeps failing owns its keys of that filter only while no other node serves it, for REFUSAL_MS', () => {
    const pool = new StubPool(['node0', 'node1']);
    const affinity = new SessionAffinity(pool as unknown as UpstreamPool, 1000);
    const node1 = pool.byName('node1')!;
    const before = owners(affinity);
    const stateBefore = affinity.state();
    affinity.streamFailing(node1, HEADS);
    const during = affinity.state();
    assert.notEqual(during, stateBefore, 'the mark changes the state the rebalance watches');
    for (const key of KEYS) {
      assert.equal(affinity.owner(key, HEADS)?.name, 'node0', `${key}: that stream goes to the other node`);
      assert.equal(affinity.owner(key, LOGS_A)?.name, before.get(key), `${key}: other filters stay`);
    }
    assert.deepEqual(affinity.refusedKinds(node1), [], 'not a refusal');
    pool.set('node0', false);
    assert.equal(affinity.owner('key-1', HEADS), node1, 'with no other node, still its owner');
    assert.equal(affinity.refusal(HEADS), undefined, 'and a client subscribing is not refused');
    assert.equal(affinity.failsStream(node1, HEADS, performance.now() + REFUSAL_MS - 1000), true);
    assert.equal(affinity.failsStream(node1, HEADS, performance.now() + REFUSAL_MS + 1), false, 'its keys back once the mark is old');
    assert.notEqual(affinity.state(), during, 'and its end changes the state again');
  });

  it("a subscription every usable node refuses has the latest refusal's node and reason, to tell the client", () => {
    const pool = new StubPool(['node0', 'node1', 'node2']);
    const affinity = new SessionAffinity(pool as unknown as UpstreamPool, 1000);
    const [node0, node1] = [pool.byName('node0')!, pool.byName('node1')!];
    const now = performance.now();
    affinity.refused(node1, { streamKey: LOGS_A.streamKey }, 'logs', new Error('node1 refused'), now);
    affinity.refused(node0, { kind: 'logs' }, 'logs', new Error('node0 refused every logs filter'), now + 10);
    pool.set('node2', false);
    assert.equal(affinity.owner('key-1', LOGS_A), undefined, 'no usable node left for it');
    const refusal = affinity.refusal(LOGS_A, now + 20);
    assert.equal(refusal?.upstream, node0, 'the latest, whether of the filter or of its kind');
    assert.equal(refusal.reason.message, 'node0 refused every logs filter');
    assert.equal(affinity.refusal(LOGS_B, now + 20)?.upstream, node0, 'a refusal of the kind covers every filter');
    assert.equal(affinity.refusal(HEADS, now + 20), undefined, 'nothing refused it');
    pool.set('node0', false);
    assert.equal(affinity.refusal(LOGS_A, now + 20)?.reason.message, 'node1 refused', 'a node not usable is not asked, whatever it refused');
    assert.equal(affinity.refusal(LOGS_A, now + REFUSAL_MS + 1), undefined, 'none once the refusals are old');
  });
});
