// The routing index: longest-prefix look-ups, most-recent-first workers, LRU eviction under both
// bounds, and forgetting a worker.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PrefixIndex, WORKERS_PER_ENTRY } from '../../src/core/prefix-index.js';

const big = { maxEntries: 1_000_000, maxBytes: 1 << 30 };
const anyone = (): boolean => true;

describe('prefix index', () => {
  it('finds the longest prefix a candidate was sent, and says how many blocks', () => {
    const ix = new PrefixIndex(big);
    ix.learn([1, 2, 3], 'w1');
    ix.learn([1, 2, 7, 8], 'w2');
    assert.deepEqual(ix.longest([1, 2, 3, 4], anyone), { workerId: 'w1', blocks: 3 });
    assert.deepEqual(ix.longest([1, 2, 7, 8, 9], anyone), { workerId: 'w2', blocks: 4 });
    // The shared first two blocks were sent to both; the most recent holder wins.
    assert.deepEqual(ix.longest([1, 2, 5], anyone), { workerId: 'w2', blocks: 2 });
    assert.equal(ix.longest([9, 9], anyone), undefined);
  });

  it('skips workers that are not candidates, falling back to a shorter prefix', () => {
    const ix = new PrefixIndex(big);
    ix.learn([1, 2], 'w1');
    ix.learn([1, 2, 3], 'w2');
    assert.deepEqual(ix.longest([1, 2, 3], (id) => id !== 'w2'), { workerId: 'w1', blocks: 2 });
  });

  it('last() is the worker a hash went to most recently', () => {
    const ix = new PrefixIndex(big);
    ix.learn([42], 'w1');
    ix.learn([42], 'w2');
    assert.equal(ix.last(42), 'w2');
    ix.learn([42], 'w1');
    assert.equal(ix.last(42), 'w1');
    assert.equal(ix.last(43), undefined);
  });

  it(`keeps at most ${WORKERS_PER_ENTRY} workers per entry, dropping the least recent`, () => {
    const ix = new PrefixIndex(big);
    for (let i = 0; i <= WORKERS_PER_ENTRY; i++) ix.learn([5], `w${i}`);
    assert.equal(ix.longest([5], (id) => id === 'w0'), undefined, 'the oldest holder was dropped');
    assert.equal(ix.longest([5], (id) => id === 'w1')?.workerId, 'w1');
    assert.equal(ix.size, 1);
  });

  it('evicts the least recently used entries beyond maxEntries', () => {
    const ix = new PrefixIndex({ maxEntries: 4, maxBytes: 1 << 30 });
    ix.learn([1, 2], 'w1');
    ix.learn([3, 4], 'w1');
    ix.learn([1], 'w1'); // 1 is used again: 2 is now the oldest
    ix.learn([5], 'w1');
    assert.equal(ix.size, 4);
    assert.equal(ix.last(2), undefined);
    for (const h of [1, 3, 4, 5]) assert.equal(ix.last(h), 'w1', `kept ${h}`);
  });

  it('learning a prompt keeps its prefixes at least as fresh as the prompt', () => {
    const ix = new PrefixIndex({ maxEntries: 3, maxBytes: 1 << 30 });
    ix.learn([1, 2, 3], 'w1');
    ix.learn([9], 'w2'); // evicts 1, the oldest
    ix.learn([1, 2, 3], 'w1'); // touches 1, 2, 3 in order: 9 is evicted, never a prefix of 3
    assert.equal(ix.last(9), undefined);
    assert.deepEqual(ix.longest([1, 2, 3], anyone), { workerId: 'w1', blocks: 3 });
  });

  it('stays under maxBytes, counting the worker lists', () => {
    const ix = new PrefixIndex({ maxEntries: 1_000_000, maxBytes: 10_000 });
    for (let i = 0; i < 1000; i++) ix.learn([i], `w${i % 7}`);
    assert.ok(ix.bytes <= 10_000, `${ix.bytes} bytes`);
    assert.ok(ix.size > 0 && ix.size < 1000);
    const before = ix.size;
    for (let i = 0; i < 50; i++) ix.learn([999], `w${i % 4}`); // a longer list costs bytes
    assert.ok(ix.bytes <= 10_000 && ix.size <= before);
  });

  it('forgets a worker that left, dropping entries only it held', () => {
    const ix = new PrefixIndex(big);
    ix.learn([1, 2], 'w1');
    ix.learn([1, 3], 'w2');
    const bytes = ix.bytes;
    ix.forgetWorker('w1');
    assert.equal(ix.last(2), undefined);
    assert.equal(ix.last(1), 'w2');
    assert.deepEqual([...ix.workerIds()], ['w2']);
    assert.ok(ix.bytes < bytes);
    ix.forgetWorker('w2');
    assert.equal(ix.size, 0);
    assert.equal(ix.bytes, 0);
  });

  it('a zero bound remembers nothing', () => {
    const ix = new PrefixIndex({ maxEntries: 0, maxBytes: 1 << 30 });
    ix.learn([1, 2], 'w1');
    assert.equal(ix.size, 0);
    assert.equal(ix.longest([1, 2], anyone), undefined);
  });
});
