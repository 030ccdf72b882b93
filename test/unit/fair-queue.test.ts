// The fair queue alone: round robin over tenants within a band, bands by priority, aging, requeued
// first, lazy removal.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FairQueue, type Level, type Slot } from '../../src/core/fair-queue.js';

function filled(entries: [string, string, Level][], agingMs = 0, now = 0): { q: FairQueue<string>; slots: Map<string, Slot<string>> } {
  const q = new FairQueue<string>(agingMs);
  const slots = new Map<string, Slot<string>>();
  entries.forEach(([id, tenant, level], i) => slots.set(id, q.push(id, i, tenant, level, now, false)));
  return { q, slots };
}

const drain = (q: FairQueue<string>, now = 0): string[] => {
  const out: string[] = [];
  for (let s = q.shift(now); s; s = q.shift(now)) out.push(s.item);
  return out;
};

describe('fair queue', () => {
  it('takes turns between tenants, FIFO within each', () => {
    const { q } = filled([
      ['a1', 'A', 1], ['a2', 'A', 1], ['a3', 'A', 1], ['a4', 'A', 1],
      ['b1', 'B', 1], ['b2', 'B', 1],
      ['c1', 'C', 1],
    ]);
    assert.deepEqual(drain(q), ['a1', 'b1', 'c1', 'a2', 'b2', 'a3', 'a4']);
    assert.equal(q.length, 0);
  });

  it('a tenant with 500 waiting does not hold back one that queues 3 after it', () => {
    const q = new FairQueue<string>(0);
    for (let i = 0; i < 500; i++) q.push(`flood${i}`, i, 'flood', 1, 0, false);
    for (let i = 0; i < 3; i++) q.push(`few${i}`, 500 + i, 'few', 1, 0, false);
    const order = drain(q);
    assert.deepEqual(order.slice(0, 6), ['flood0', 'few0', 'flood1', 'few1', 'flood2', 'few2']);
  });

  it('higher bands first; requeued before all; aging lifts a waiting low request one band', () => {
    const q = new FairQueue<string>(1000);
    q.push('low1', 0, 'A', 2, 0, false);
    q.push('norm1', 1, 'A', 1, 500, false);
    q.push('high1', 2, 'B', 0, 500, false);
    q.push('norm2', 3, 'B', 1, 500, false);
    q.push('again', 4, 'C', 1, 600, true);
    assert.equal(q.shift(700)!.item, 'again');
    assert.equal(q.shift(700)!.item, 'high1');
    // At t=1000 low1 has waited 1 s: it competes as normal, and is older than norm1.
    assert.equal(q.shift(1000)!.item, 'low1');
    assert.deepEqual(drain(q, 1000), ['norm1', 'norm2']);
  });

  it('without aging, low waits for every higher band', () => {
    const { q } = filled([['low', 'A', 2], ['n1', 'B', 1], ['n2', 'B', 1]]);
    assert.deepEqual(drain(q, 1e9), ['n1', 'n2', 'low']);
  });

  it('removed slots are skipped; a tenant left with none drops out of the turn', () => {
    const { q, slots } = filled([['a1', 'A', 1], ['a2', 'A', 1], ['b1', 'B', 1], ['c1', 'C', 1]]);
    q.remove(slots.get('b1')!);
    q.remove(slots.get('a1')!);
    assert.equal(q.length, 2);
    assert.deepEqual(drain(q), ['a2', 'c1']);
  });

  it('a slot taken by aging is not served again from its tenant', () => {
    const q = new FairQueue<string>(10);
    q.push('old-low', 0, 'A', 2, 0, false);
    q.push('n', 1, 'B', 1, 100, false);
    assert.equal(q.shift(100)!.item, 'old-low');
    assert.equal(q.shift(100)!.item, 'n');
    assert.equal(q.shift(100), undefined);
    assert.equal(q.length, 0);
  });

  it('with 1,000 tenants and 10,000 waiting, every tenant gets one turn in each round', () => {
    const q = new FairQueue<number>(0);
    let seq = 0;
    for (let i = 0; i < 10_000; i++) q.push(i, seq++, `t${i % 1000}`, 1, 0, false);
    for (let round = 0; round < 10; round++) {
      const tenants = new Set<string>();
      for (let i = 0; i < 1000; i++) tenants.add(q.shift(0)!.tenant);
      assert.equal(tenants.size, 1000, `round ${round}: each tenant once`);
    }
    assert.equal(q.length, 0);
  });
});
