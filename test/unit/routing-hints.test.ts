// The edge's prompt hashing: a conversation's next turn extends its previous turn's hashes, distinct
// prompts differ, long strings cost a bounded sample, and affinity keys are read from body or header.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_BLOCKS, PROMPT_CHUNK, promptHashes, routingHints } from '../../src/server/routing-hints.js';

const sys = { role: 'system', content: 'You are a pirate. '.repeat(100) };
const turn1 = [sys, { role: 'user', content: 'Hello there' }];
const turn2 = [...turn1, { role: 'assistant', content: 'Arr, hello.' }, { role: 'user', content: 'Tell me more' }];

const isPrefix = (a: number[], b: number[]): boolean => a.length <= b.length && a.every((h, i) => b[i] === h);

describe('routing hints', () => {
  it('the next turn of a conversation starts with the hashes of the turn before', () => {
    const h1 = promptHashes({ messages: turn1 }, 'm')!;
    const h2 = promptHashes({ messages: turn2 }, 'm')!;
    assert.equal(h1.length, 2);
    assert.equal(h2.length, 4);
    assert.ok(isPrefix(h1, h2));
    assert.equal(new Set(h2).size, 4, 'each block hash covers all before it');
  });

  it('other system prompts, models or contents give other hashes', () => {
    const base = promptHashes({ messages: turn1 }, 'm')!;
    const otherSys = promptHashes({ messages: [{ role: 'system', content: 'You are a parrot. '.repeat(100) }, turn1[1]] }, 'm')!;
    assert.notEqual(otherSys[0], base[0]);
    assert.notEqual(otherSys[1], base[1]);
    assert.notEqual(promptHashes({ messages: turn1 }, 'other')![0], base[0]);
    const otherUser = promptHashes({ messages: [sys, { role: 'user', content: 'Hello therE' }] }, 'm')!;
    assert.equal(otherUser[0], base[0]);
    assert.notEqual(otherUser[1], base[1]);
  });

  it('a long message is read as a sample: its length, ends and 32 characters at an even stride', () => {
    const long = 'x'.repeat(200_000);
    const at = (i: number): string => long.slice(0, i) + 'y' + long.slice(i + 1);
    const h = (content: string): number => promptHashes({ messages: [{ role: 'user', content }] }, 'm')![0]!;
    const base = h(long);
    assert.notEqual(h(long + 'x'), base, 'the length is hashed');
    assert.notEqual(h(at(10)), base, 'the head is hashed');
    assert.notEqual(h(at(199_990)), base, 'the tail is hashed');
    // The stride: (200,000 - 32) / 33 = 6059.6…; the 16th sample is at 16 + floor(16 × 6059.63) = 96,970.
    assert.notEqual(h(at(96_970)), base, 'a sampled character');
    assert.equal(h(at(100_000)), base, 'between samples: taken for the same prompt (a cache-miss risk, never a wrong answer)');
    const short = 'y'.repeat(64);
    assert.notEqual(h(short), h(`${short.slice(0, 30)}z${short.slice(31)}`), 'up to 64 characters, every one counts');
  });

  it('Anthropic system and tools make a head block; a plain prompt is cut into chunks', () => {
    const anth = promptHashes({ system: 'Be brief.', tools: [{ name: 't', input_schema: { type: 'object' } }], messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }] }, 'm')!;
    assert.equal(anth.length, 2);
    const noTools = promptHashes({ system: 'Be brief.', messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }] }, 'm')!;
    assert.notEqual(anth[0], noTools[0]);
    const text = 'abc'.repeat(PROMPT_CHUNK);
    const p1 = promptHashes({ prompt: text }, 'm')!;
    const p2 = promptHashes({ prompt: text + 'and more' }, 'm')!;
    assert.equal(p1.length, 3);
    assert.ok(isPrefix(p1.slice(0, 2), p2), 'whole chunks match');
    assert.equal(promptHashes({ input: 'hello' }, 'm')!.length, 1, 'Responses input text');
    assert.equal(promptHashes({ instructions: 'x', input: [{ role: 'user', content: 'hi' }] }, 'm')!.length, 2, 'Responses instructions and items');
  });

  it(`hashes at most ${MAX_BLOCKS} blocks`, () => {
    const messages = Array.from({ length: MAX_BLOCKS + 50 }, (_, i) => ({ role: 'user', content: `m${i}` }));
    assert.equal(promptHashes({ messages }, 'm')!.length, MAX_BLOCKS);
  });

  it('nothing to route by: no hints', () => {
    assert.equal(routingHints({ model: 'm' }, 'm', undefined), undefined);
    assert.equal(promptHashes({ model: 'm', messages: 'not a list' }, 'm'), undefined);
  });

  it('prompt_cache_key, else X-Session-Id, is the affinity key (per model)', () => {
    const k = routingHints({ prompt_cache_key: 'conv-1' }, 'm', undefined)!.affinity;
    assert.equal(typeof k, 'number');
    assert.equal(routingHints({ prompt_cache_key: 'conv-1', messages: turn1 }, 'm', 'other')!.affinity, k, 'the body key wins over the header');
    assert.equal(routingHints({}, 'm', 'conv-1')!.affinity, k, 'same key, same hash, wherever it came from');
    assert.notEqual(routingHints({}, 'm2', 'conv-1')!.affinity, k);
    assert.notEqual(routingHints({}, 'm', 'conv-2')!.affinity, k);
    assert.equal(routingHints({ prompt_cache_key: 7 }, 'm', undefined), undefined, 'a non-string key is ignored');
    const both = routingHints({ messages: turn1 }, 'm', 's1')!;
    assert.equal(both.prefix!.length, 2);
    assert.ok(!both.prefix!.includes(both.affinity!));
  });
});
