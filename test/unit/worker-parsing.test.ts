// The worker's stream handling: SSE event boundaries and token-count extraction.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SseSplitter } from '../../src/worker/sse-splitter.js';
import { UsageCollector } from '../../src/worker/usage.js';

test('the splitter forwards only whole events, across arbitrary reads', () => {
  const s = new SseSplitter();
  assert.equal(s.push('data: {"a"'), '');
  assert.equal(s.push(':1}\n\ndata: {"b":2}\n'), 'data: {"a":1}\n\n');
  assert.equal(s.push('\nevent: x\r\ndata: y\r\n\r\nda'), 'data: {"b":2}\n\nevent: x\r\ndata: y\r\n\r\n');
  assert.equal(s.flush(), 'da');
});

test('OpenAI usage from the final stream chunk', () => {
  const u = new UsageCollector();
  u.fromEvents('data: {"choices":[{"delta":{"content":"hi"}}],"usage":null}\n\n');
  u.fromEvents('data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}\n\ndata: [DONE]\n\n');
  assert.deepEqual(u.result(), { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 });
});

test('Anthropic usage across message_start and message_delta, cached input included', () => {
  const u = new UsageCollector();
  u.fromEvents('event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":1,"cache_read_input_tokens":75,"output_tokens":1}}}\n\n');
  u.fromEvents('event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":4}}\n\n');
  assert.deepEqual(u.result(), { prompt_tokens: 76, completion_tokens: 4, total_tokens: 80 });
});

test('Responses usage and non-streaming bodies; no usage → undefined', () => {
  const u = new UsageCollector();
  u.fromEvents('event: response.completed\ndata: {"response":{"usage":{"input_tokens":5,"output_tokens":2,"total_tokens":7}}}\n\n');
  assert.deepEqual(u.result(), { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 });
  const b = new UsageCollector();
  b.fromBody('{"usage":{"prompt_tokens":2,"completion_tokens":1}}');
  assert.deepEqual(b.result(), { prompt_tokens: 2, completion_tokens: 1, total_tokens: 3 });
  const none = new UsageCollector();
  none.fromBody('{"data":[]}');
  assert.equal(none.result(), undefined);
});

test('usage from a body held as bytes: only the tail after the last "usage" is read', () => {
  const body = Buffer.from(`{"data":[{"embedding":[${'0.125,'.repeat(1000)}0.5],"note":"ünïcödé"}],"usage":{"prompt_tokens":4,"total_tokens":4}}`);
  assert.deepEqual(UsageCollector.fromBytes(body), { prompt_tokens: 4, completion_tokens: undefined, total_tokens: 4 });
  assert.equal(UsageCollector.fromBytes(Buffer.from('{"data":[]}')), undefined);
  assert.equal(UsageCollector.fromBytes(Buffer.from('{"usage":')), undefined, 'a truncated usage object');
});

test('counts the protocol cannot carry (past 2^53) are dropped, not sent to be refused with the whole frame', () => {
  // Found by test/unit/fuzz-codec.test.ts: the server refuses such a frame and closes the worker.
  const u = new UsageCollector();
  u.fromEvents('data: {"usage":{"prompt_tokens":9007199254740993,"completion_tokens":3}}\n\n');
  assert.deepEqual(u.result(), { prompt_tokens: undefined, completion_tokens: 3, total_tokens: 3 });
  const v = new UsageCollector();
  v.fromEvents('event: message_start\ndata: {"message":{"usage":{"input_tokens":9007199254740990,"cache_read_input_tokens":9007199254740990,"output_tokens":1}}}\n\n');
  const r = v.result()!;
  for (const n of [r.prompt_tokens, r.completion_tokens, r.total_tokens]) assert.ok(n === undefined || Number.isSafeInteger(n), String(n));
});
