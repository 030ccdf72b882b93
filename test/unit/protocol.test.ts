// The codec: valid frames decode, anything else is a typed failure with close code 1002.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeServerMessage, decodeWorkerMessage, encode } from '../../src/protocol/index.js';
import { forwardableHeaders } from '../../src/protocol/headers.js';

test('worker messages decode, unknown fields are ignored', () => {
  const d = decodeWorkerMessage(JSON.stringify({ type: 'register', worker_name: 'w', models: ['a'], max_concurrent: 2, future_field: 1 }));
  assert.ok(d.ok);
  assert.equal(d.msg.type, 'register');
  assert.equal('future_field' in d.msg, false);
});

test('response_chunk fast path validates like the schema', () => {
  const ok = decodeWorkerMessage(encode({ type: 'response_chunk', request_id: 'r1', chunk: 'data: x\n\n' }));
  assert.deepEqual(ok, { ok: true, msg: { type: 'response_chunk', request_id: 'r1', chunk: 'data: x\n\n' } });
  for (const bad of [
    '{"type":"response_chunk","request_id":5,"chunk":"x"}',
    '{"type":"response_chunk","request_id":"r","chunk":null}',
    '{"type":"response_chunk","request_id":"","chunk":"x"}',
    '{"type":"response_chunk","request_id":"r"',
  ]) {
    const d = decodeWorkerMessage(bad);
    assert.equal(d.ok, false, bad);
    if (!d.ok) assert.equal(d.closeCode, 1002);
  }
});

test('garbage, unknown types and wrong shapes are protocol errors', () => {
  for (const bad of ['not json', '[]', '{"type":"hello"}', '{"type":"response_complete","request_id":"r"}', '{"type":"pong","current_load":-1}']) {
    const d = decodeWorkerMessage(bad);
    assert.equal(d.ok, false, bad);
    if (!d.ok) assert.equal(d.closeCode, 1002);
  }
});

test('server messages decode with defaults', () => {
  const d = decodeServerMessage(JSON.stringify({ type: 'request', request_id: 'r', model: 'm', endpoint_path: '/v1/chat/completions', is_streaming: true, body: '{}' }));
  assert.ok(d.ok && d.msg.type === 'request');
  if (d.ok && d.msg.type === 'request') assert.deepEqual(d.msg.headers, {});
  const c = decodeServerMessage(JSON.stringify({ type: 'cancel', request_id: 'r', reason: { other: 'why' } }));
  assert.ok(c.ok);
});

test('hop-by-hop headers and those named by Connection are not forwarded', () => {
  const out = forwardableHeaders({ Connection: 'keep-alive, X-Private', 'x-private': '1', 'keep-alive': 'timeout=5', host: 'h', 'content-length': '3', 'X-Custom': 'v', authorization: 'Bearer k' });
  assert.deepEqual(out, { 'x-custom': 'v', authorization: 'Bearer k' });
});

test('response_complete and request fast paths accept what the schema accepts and reject the rest', () => {
  const good = decodeWorkerMessage('{"type":"response_complete","request_id":"r","status_code":200,"headers":{"a":"b"},"body":"{}","token_counts":{"prompt_tokens":1,"total_tokens":2},"extra":1}');
  assert.ok(good.ok, 'valid response_complete');
  if (good.ok && good.msg.type === 'response_complete') {
    assert.equal(good.msg.status_code, 200);
    assert.equal(good.msg.token_counts?.total_tokens, 2);
    assert.deepEqual(good.msg.headers, { a: 'b' });
    assert.equal(good.msg.body, '{}');
  }
  for (const bad of [
    '{"type":"response_complete","request_id":"r","status_code":99}',
    '{"type":"response_complete","request_id":"r","status_code":200.5}',
    '{"type":"response_complete","request_id":"r","status_code":200,"headers":{"a":1}}',
    '{"type":"response_complete","request_id":"r","status_code":200,"token_counts":{"total_tokens":-1}}',
    '{"type":"response_complete","request_id":"r","status_code":200,"body":5}',
  ]) {
    const d = decodeWorkerMessage(bad);
    assert.equal(d.ok, false, bad);
  }
  const req = decodeServerMessage('{"type":"request","request_id":"r","model":"m","endpoint_path":"/v1/x","is_streaming":false,"body":"{}"}');
  assert.ok(req.ok && req.msg.type === 'request' && req.msg.headers !== undefined, 'request decodes with default headers');
  assert.equal(decodeServerMessage('{"type":"request","request_id":"r","model":"m","endpoint_path":"/v1/x","is_streaming":"no","body":"{}"}').ok, false, 'bad request rejected');
});
