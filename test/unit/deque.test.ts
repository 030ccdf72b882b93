import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Deque } from '../../src/core/deque.js';

interface Item {
  n: number;
  alive: boolean;
}
const isAlive = (i: Item): boolean => i.alive;
const item = (n: number): Item => ({ n, alive: true });

/** The private backing array, to check that compaction really releases the dead prefix. */
const backing = (d: Deque<unknown>): unknown[] => (d as unknown as { buf: unknown[] }).buf;

describe('Deque', () => {
  it('is FIFO: push then shift returns items in order, then undefined', () => {
    const d = new Deque<number>();
    for (let i = 0; i < 5; i++) d.push(i);
    assert.equal(d.rawLength, 5);
    const out: (number | undefined)[] = [];
    for (let i = 0; i < 5; i++) out.push(d.shift());
    assert.deepEqual(out, [0, 1, 2, 3, 4]);
    assert.equal(d.shift(), undefined);
    assert.equal(d.rawLength, 0);
  });

  it('unshift puts an item in front, both on a fresh deque and after shifts (reusing the freed slot)', () => {
    const d = new Deque<string>();
    d.push('b');
    d.unshift('a'); // head == 0: array unshift
    assert.deepEqual([d.shift(), d.shift()], ['a', 'b']);

    d.push('x');
    d.push('y');
    d.push('z');
    assert.equal(d.shift(), 'x'); // head > 0 now
    d.unshift('w');
    d.unshift('v');
    assert.equal(d.rawLength, 4);
    assert.deepEqual([d.shift(), d.shift(), d.shift(), d.shift(), d.shift()], ['v', 'w', 'y', 'z', undefined]);
  });

  it('peek returns the first alive item without removing it, and discards dead items in front', () => {
    const d = new Deque<Item>();
    const items = [item(0), item(1), item(2), item(3)];
    for (const i of items) d.push(i);
    assert.equal(d.peek(isAlive), items[0]);
    assert.equal(d.peek(isAlive), items[0], 'peek does not consume');
    assert.equal(d.rawLength, 4);

    items[0]!.alive = false;
    items[1]!.alive = false;
    items[3]!.alive = false; // dead behind a live item: stays until the head passes it
    assert.equal(d.peek(isAlive), items[2]);
    assert.equal(d.rawLength, 2, 'the two dead items in front were discarded');
    assert.equal(d.shift(), items[2]);
    assert.equal(d.peek(isAlive), undefined, 'only a dead item left');
    assert.equal(d.rawLength, 0);
    assert.equal(d.shift(), undefined);
  });

  it('peek on an empty deque is undefined and the deque stays usable', () => {
    const d = new Deque<Item>();
    assert.equal(d.peek(isAlive), undefined);
    const a = item(1);
    d.push(a);
    assert.equal(d.peek(isAlive), a);
  });

  it('compacts its dead prefix with >2,000 items and keeps FIFO order across compaction', () => {
    const d = new Deque<number>();
    const N = 5000;
    for (let i = 0; i < N; i++) d.push(i);
    for (let i = 0; i < 3000; i++) assert.equal(d.shift(), i);
    assert.equal(d.rawLength, N - 3000);
    // The dead prefix dominated at some point past 1,024 shifts, so the backing array shrank.
    assert.ok(backing(d).length < N, `backing array still ${backing(d).length} long`);
    assert.ok(backing(d).length <= 2 * d.rawLength + 1024, 'memory follows the live length');
    // Interleave pushes, unshifts and shifts across further compactions.
    d.unshift(-1);
    for (let i = N; i < N + 3000; i++) d.push(i);
    assert.equal(d.shift(), -1);
    for (let i = 3000; i < N + 3000; i++) assert.equal(d.shift(), i);
    assert.equal(d.shift(), undefined);
    assert.equal(d.rawLength, 0);
    assert.equal(backing(d).length, 0, 'an emptied deque drops its array');
  });

  it('compacts when lazily-dead items are discarded by peek (the cancelled-request path)', () => {
    const d = new Deque<Item>();
    const items = Array.from({ length: 2500 }, (_, n) => item(n));
    for (const i of items) d.push(i);
    for (let n = 0; n < 2400; n++) items[n]!.alive = false;
    assert.equal(d.peek(isAlive), items[2400]);
    assert.equal(d.rawLength, 100);
    assert.ok(backing(d).length < 2500, 'peek-driven drops compact too');
    for (let n = 2400; n < 2500; n++) assert.equal(d.shift(), items[n]);
    assert.equal(d.shift(), undefined);
  });
});
