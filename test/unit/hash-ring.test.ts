import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { HashRing, hash32, weightUnit } from '../../src/subs/hash-ring.js';
import type { RingNode } from '../../src/subs/hash-ring.js';

const keys = Array.from({ length: 10_000 }, (_, i) => `session-${i}`);

function ringOf(nodes: RingNode[], virtualNodes?: number): HashRing {
  const ring = virtualNodes === undefined ? new HashRing() : new HashRing({ virtualNodes });
  ring.setNodes(nodes);
  return ring;
}

function equal(...names: string[]): RingNode[] {
  return names.map((name) => ({ name, weight: 1 }));
}

function mapping(ring: HashRing, eligible?: (name: string) => boolean): Map<string, string | undefined> {
  return new Map(keys.map((key) => [key, ring.lookup(key, eligible)]));
}

function shares(owners: Iterable<string | undefined>): Map<string | undefined, number> {
  const counts = new Map<string | undefined, number>();
  for (const owner of owners) counts.set(owner, (counts.get(owner) ?? 0) + 1);
  return counts;
}

describe('hash32', () => {
  it('is MurmurHash3 x86_32, so every process and replica agrees', () => {
    // Published MurmurHash3 test vectors.
    assert.equal(hash32(''), 0);
    assert.equal(hash32('', 1), 0x514e28b7);
    assert.equal(hash32('', 0xffffffff), 0x81f16f39);
    assert.equal(hash32('\0\0\0\0'), 0x2362f9de);
    assert.equal(hash32('aaaa', 0x9747b28c), 0x5a97808a);
    assert.equal(hash32('Hello, world!', 0x9747b28c), 0x24884cba);
    assert.equal(hash32('The quick brown fox jumps over the lazy dog', 0x9747b28c), 0x2fa826cd);
  });

  it('hashes whole characters, not truncated UTF-16 code units', () => {
    assert.notEqual(hash32('\u0100'), hash32('\u0000'));
    assert.notEqual(hash32('node-\u{1f600}'), hash32('node-\u{1f601}'));
  });
});

describe('HashRing', () => {
  it('returns nothing from an empty ring', () => {
    const ring = new HashRing();
    assert.equal(ring.lookup('k'), undefined);
    assert.deepEqual(ring.preference('k'), []);
    ring.setNodes(equal('a'));
    ring.setNodes([]);
    assert.equal(ring.lookup('k', () => true), undefined);
  });

  it('maps a key to the owner of the first point at or after its hash, wrapping past the top', () => {
    // One point per node, so the expected owner can be computed directly from hash32.
    const ring = ringOf(equal('a', 'b', 'c'), 1);
    const points = ['a', 'b', 'c'].map((name) => ({ name, at: hash32(`${name}#0`) })).sort((x, y) => x.at - y.at);
    let wrapped = 0;
    for (const key of keys) {
      const at = hash32(key);
      const owner = points.find((point) => point.at >= at) ?? points[0];
      if (points.every((point) => point.at < at)) wrapped++;
      assert.equal(ring.lookup(key), owner?.name, key);
    }
    assert.ok(wrapped > 0, 'some keys must hash above the last point');
    // A key hashing exactly onto a point belongs to that point's node.
    assert.equal(ring.lookup('b#0'), 'b');
  });

  it('lists every node once in the preference list, starting with the lookup result', () => {
    const ring = ringOf([...equal('a', 'b', 'c', 'd'), { name: 'e', weight: 3 }]);
    for (const key of keys.slice(0, 500)) {
      const preference = ring.preference(key);
      assert.deepEqual([...preference].sort(), ['a', 'b', 'c', 'd', 'e']);
      assert.equal(preference[0], ring.lookup(key));
    }
    // Keys do not all share one preference order.
    assert.ok(new Set(keys.slice(0, 500).map((key) => ring.preference(key).join())).size > 10);
  });

  it('balances 10,000 keys over 3 equal nodes within ±10%', () => {
    const nameSets = [
      ['a', 'b', 'c'],
      ['upstream-1', 'upstream-2', 'upstream-3'],
      ['node-a', 'node-b', 'node-c'],
      ['alchemy', 'infura', 'local'],
      ['ws://10.0.0.1:8546', 'ws://10.0.0.2:8546', 'ws://10.0.0.3:8546'],
    ];
    for (const names of nameSets) {
      const counts = shares(mapping(ringOf(equal(...names))).values());
      assert.deepEqual([...counts.keys()].sort(), [...names].sort());
      for (const [name, count] of counts) {
        assert.ok(Math.abs(count / (keys.length / 3) - 1) <= 0.1, `${name}: ${count} of ${keys.length} keys`);
      }
    }
  });

  it('splits keys about 50/25/25 for weights 2:1:1', () => {
    const counts = shares(mapping(ringOf([{ name: 'big', weight: 2 }, ...equal('small-1', 'small-2')])).values());
    const expected = new Map([
      ['big', 0.5],
      ['small-1', 0.25],
      ['small-2', 0.25],
    ]);
    for (const [name, share] of expected) {
      const count = counts.get(name) ?? 0;
      assert.ok(Math.abs(count / (keys.length * share) - 1) <= 0.1, `${name}: ${count} of ${keys.length} keys`);
    }
  });

  it('moves only the keys of an ineligible node, spreading them over the others', () => {
    const ring = ringOf(equal('a', 'b', 'c', 'd'));
    const before = mapping(ring);
    const after = mapping(ring, (name) => name !== 'b');
    const movedTo: string[] = [];
    for (const key of keys) {
      if (before.get(key) === 'b') {
        assert.notEqual(after.get(key), 'b');
        assert.equal(after.get(key), ring.preference(key)[1]);
        movedTo.push(after.get(key)!);
      } else {
        assert.equal(after.get(key), before.get(key), key);
      }
    }
    assert.ok(movedTo.length > 2000);
    assert.deepEqual(new Set(movedTo), new Set(['a', 'c', 'd']));
  });

  it('moves only the removed node’s keys when setNodes drops it, exactly as if it were ineligible', () => {
    const ring = ringOf(equal('a', 'b', 'c', 'd'));
    const before = mapping(ring);
    const ineligible = mapping(ring, (name) => name !== 'c');
    ring.setNodes(equal('a', 'b', 'd'));
    const after = mapping(ring);
    let moved = 0;
    for (const key of keys) {
      if (before.get(key) === 'c') moved++;
      else assert.equal(after.get(key), before.get(key), key);
    }
    assert.ok(moved > 2000);
    assert.deepEqual(after, ineligible);
  });

  it('restores exactly the old mapping when a node is added back', () => {
    const nodes = [...equal('a', 'b', 'c'), { name: 'd', weight: 2 }];
    const ring = ringOf(nodes);
    const before = keys.map((key) => ring.preference(key).join());
    ring.setNodes(nodes.filter((node) => node.name !== 'd'));
    assert.notDeepEqual(
      keys.map((key) => ring.preference(key).join()),
      before,
    );
    ring.setNodes(nodes);
    assert.deepEqual(
      keys.map((key) => ring.preference(key).join()),
      before,
    );
  });

  it('does not depend on the order nodes are given in', () => {
    const nodes = [...equal('a', 'b', 'c'), { name: 'd', weight: 0.5 }];
    const forward = mapping(ringOf(nodes));
    assert.deepEqual(mapping(ringOf([...nodes].reverse())), forward);
  });

  it('moves keys only onto a node whose weight grows', () => {
    const ring = ringOf(equal('a', 'b', 'c'));
    const before = mapping(ring);
    ring.setNodes([...equal('a', 'b'), { name: 'c', weight: 2 }]);
    const after = mapping(ring);
    let gained = 0;
    for (const key of keys) {
      if (after.get(key) !== before.get(key)) {
        assert.equal(after.get(key), 'c', key);
        gained++;
      }
    }
    assert.ok(gained > 1000);
  });

  it('takes weights by their ratios: 1000, 1000, 1000 is the ring of 1, 1, 1, and 700, 200, 100 that of 7, 2, 1', () => {
    assert.deepEqual(mapping(ringOf([{ name: 'a', weight: 1000 }, { name: 'b', weight: 1000 }, { name: 'c', weight: 1000 }])), mapping(ringOf(equal('a', 'b', 'c'))));
    const ratios = [{ name: 'a', weight: 7 }, { name: 'b', weight: 2 }, { name: 'c', weight: 1 }];
    assert.deepEqual(mapping(ringOf([{ name: 'a', weight: 700 }, { name: 'b', weight: 200 }, { name: 'c', weight: 100 }])), mapping(ringOf(ratios)));
  });

  it('gives no node more than ten times virtualNodes points, whatever the weights, keeping their shares', () => {
    assert.equal(weightUnit([1, 1, 1]), 1);
    assert.equal(weightUnit([2, 1, 1]), 1);
    assert.equal(weightUnit([1000, 1000]), 1000);
    assert.equal(weightUnit([1000, 1]), 100);
    assert.equal(weightUnit([334, 333, 333]), 33.4);
    const ring = ringOf([{ name: 'a', weight: 1000 }, { name: 'b', weight: 999 }, { name: 'c', weight: 1 }]);
    const shares = new Map<string, number>();
    for (const key of keys) shares.set(ring.lookup(key)!, (shares.get(ring.lookup(key)!) ?? 0) + 1);
    assert.ok(Math.abs(shares.get('a')! - shares.get('b')!) < 600, `a ${shares.get('a')}, b ${shares.get('b')}`);
    assert.ok((shares.get('c') ?? 0) < 60, `c ${shares.get('c')}`);
  });

  it('uses weight-0 nodes only after every weighted node, in name order', () => {
    const ring = ringOf([...equal('a', 'b'), { name: 'spare-2', weight: 0 }, { name: 'spare-1', weight: 0 }]);
    for (const key of keys.slice(0, 200)) {
      assert.deepEqual(ring.preference(key).slice(2), ['spare-1', 'spare-2']);
      assert.ok(['a', 'b'].includes(ring.lookup(key)!));
    }
    assert.equal(ring.lookup('k', (name) => name.startsWith('spare')), 'spare-1');
    assert.equal(ring.lookup('k', (name) => name === 'spare-2'), 'spare-2');
    assert.equal(ring.lookup('k', () => false), undefined);
    const onlySpares = ringOf([{ name: 'z', weight: 0 }, { name: 'y', weight: Number.NaN }]);
    assert.equal(onlySpares.lookup('k'), 'y');
    assert.deepEqual(onlySpares.preference('k'), ['y', 'z']);
  });

  it('works with few virtual nodes and rejects bad input', () => {
    const ring = ringOf(equal('a', 'b'), 1);
    assert.deepEqual(new Set(keys.map((key) => ring.lookup(key))), new Set(['a', 'b']));
    assert.throws(() => new HashRing({ virtualNodes: 0 }), RangeError);
    assert.throws(() => new HashRing({ virtualNodes: 1.5 }), RangeError);
    assert.throws(() => ring.setNodes(equal('a', 'a')), /duplicate ring node "a"/);
  });
});
