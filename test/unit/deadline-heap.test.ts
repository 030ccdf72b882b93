import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DeadlineHeap } from '../../src/core/deadline-heap.js';
import { prng } from '../helpers/prng.js';


describe('DeadlineHeap', () => {
  it('is empty at first', () => {
    const h = new DeadlineHeap();
    assert.equal(h.size, 0);
    assert.equal(h.peek(), undefined);
    assert.equal(h.pop(), undefined);
  });

  it('pops a single item and becomes empty', () => {
    const h = new DeadlineHeap<'queue'>();
    h.push({ at: 5, kind: 'queue', id: 'a' });
    assert.equal(h.peek()?.id, 'a');
    assert.equal(h.pop()?.id, 'a');
    assert.equal(h.size, 0);
    assert.equal(h.pop(), undefined);
  });

  it('pops in non-decreasing deadline order for random input (with duplicates)', () => {
    const rnd = prng(42);
    for (let round = 0; round < 20; round++) {
      const h = new DeadlineHeap<'x'>();
      const n = 1 + Math.floor(rnd() * 300);
      const ats: number[] = [];
      for (let i = 0; i < n; i++) {
        const at = Math.floor(rnd() * 50); // many ties
        ats.push(at);
        h.push({ at, kind: 'x', id: String(i) });
        assert.equal(h.peek()!.at, Math.min(...ats), 'peek is the minimum after each push');
      }
      assert.equal(h.size, n);
      const out: number[] = [];
      const ids = new Set<string>();
      for (let k = 0; k < n; k++) {
        const d = h.pop();
        assert.ok(d, `heap ran dry after ${k} of ${n}`);
        out.push(d.at);
        ids.add(d.id);
      }
      assert.deepEqual(out, [...ats].sort((a, b) => a - b));
      assert.equal(ids.size, n, 'every entry comes out exactly once');
      assert.equal(h.size, 0);
      assert.equal(h.pop(), undefined);
    }
  });

  it('stays ordered when pushes and pops interleave', () => {
    const rnd = prng(7);
    const h = new DeadlineHeap<'x'>();
    const model: number[] = [];
    for (let step = 0; step < 3000; step++) {
      if (model.length === 0 || rnd() < 0.6) {
        const at = Math.floor(rnd() * 1000);
        h.push({ at, kind: 'x', id: `i${step}` });
        model.push(at);
      } else {
        model.sort((a, b) => a - b);
        assert.equal(h.pop()!.at, model.shift());
      }
      assert.equal(h.size, model.length);
      assert.equal(h.peek()?.at, model.length ? Math.min(...model) : undefined);
    }
  });
});
