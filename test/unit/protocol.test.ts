// The codec: valid frames decode, anything else is a typed failure with close code 1002.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeBinaryServerMessage, decodeBinaryWorkerMessage, decodeServerMessage, decodeWorkerMessage, encode, encodeBinary } from '../../src/protocol/index.js';
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
    // Found by test/unit/fuzz-codec.test.ts: the fast path took an array for the token_counts object.
    '{"type":"response_complete","request_id":"r","status_code":200,"token_counts":[]}',
    // ...and a count past 2^53 (zod's int() takes safe integers only).
    '{"type":"response_complete","request_id":"r","status_code":200,"token_counts":{"completion_tokens":9007199254740992}}',
  ]) {
    const d = decodeWorkerMessage(bad);
    assert.equal(d.ok, false, bad);
  }
  const req = decodeServerMessage('{"type":"request","request_id":"r","model":"m","endpoint_path":"/v1/x","is_streaming":false,"body":"{}"}');
  assert.ok(req.ok && req.msg.type === 'request' && req.msg.headers !== undefined, 'request decodes with default headers');
  assert.equal(decodeServerMessage('{"type":"request","request_id":"r","model":"m","endpoint_path":"/v1/x","is_streaming":"no","body":"{}"}').ok, false, 'bad request rejected');
});

test('binary-frames: payloads cross as raw bytes and decode to the same message', () => {
  const body = '{"model":"m","messages":[{"role":"user","content":"\\"quoted\\" ünïcödé 🎉\\n"}]}';
  const req = { type: 'request', request_id: 'req_1', model: 'm', endpoint_path: '/v1/chat/completions', is_streaming: true, body, headers: { a: 'b' } } as const;
  const frame = encodeBinary(req)!;
  const h = frame.readUInt32BE(0);
  assert.equal(frame.subarray(4 + h).toString(), body, 'the payload is the body, byte for byte, unescaped');
  assert.equal('body' in JSON.parse(frame.subarray(4, 4 + h).toString()), false, 'the header does not repeat it');
  const back = decodeBinaryServerMessage(frame);
  assert.ok(back.ok);
  assert.deepEqual(back.msg, req);
  // The caller's bytes can stand in for the field (the server has the client's body as a Buffer).
  assert.deepEqual(encodeBinary({ ...req, body: '' }, Buffer.from(body)), frame);

  const chunk = { type: 'response_chunk', request_id: 'req_1', chunk: 'data: {"x":"é"}\n\n' } as const;
  const c = decodeBinaryWorkerMessage(encodeBinary(chunk)!);
  assert.ok(c.ok);
  assert.deepEqual(c.msg, chunk);
  const done = { type: 'response_complete', request_id: 'req_1', status_code: 200, headers: { 'content-type': 'application/json' }, body: '{"ok":"ü"}', token_counts: { total_tokens: 3 } } as const;
  const d = decodeBinaryWorkerMessage(encodeBinary(done)!);
  assert.ok(d.ok);
  assert.deepEqual(d.msg, done);
  assert.equal(Buffer.byteLength(encodeBinary(done)!.subarray(4)), encodeBinary(done)!.length - 4);

  // Nothing to carry: the caller sends text instead.
  assert.equal(encodeBinary({ type: 'response_complete', request_id: 'r', status_code: 200 }), undefined);
  assert.equal(encodeBinary({ type: 'pong', current_load: 0 }), undefined);
});

test('binary-frames: malformed binary frames are typed failures with 1002', () => {
  const header = (h: string, payload = ''): Buffer => {
    const b = Buffer.from(h);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    return Buffer.concat([len, b, Buffer.from(payload)]);
  };
  const lying = Buffer.alloc(8);
  lying.writeUInt32BE(100);
  for (const [what, frame] of [
    ['too short', Buffer.from([0, 1])],
    ['header length past the end', lying],
    ['header not JSON', header('{nope', 'x')],
    ['header not an object', header('[1]', 'x')],
    ['a type without a payload', header('{"type":"pong","current_load":0}', 'x')],
    ['a __proto__ type', header('{"type":"__proto__","request_id":"r"}', 'x')],
    ['a payload message failing its schema', header('{"type":"response_complete","request_id":"r","status_code":42}', 'x')],
    // Found by test/unit/fuzz-codec.test.ts: invalid UTF-8 became U+FFFD in what the client got.
    ['a payload that is not UTF-8', Buffer.concat([header('{"type":"response_chunk","request_id":"r"}'), Buffer.from([0x64, 0x80, 0x0a])])],
    ['a header that is not UTF-8', (() => {
      const h = Buffer.concat([Buffer.from('{"type":"response_chunk","request_id":"r'), Buffer.from([0xff]), Buffer.from('"}')]);
      const len = Buffer.alloc(4);
      len.writeUInt32BE(h.length);
      return Buffer.concat([len, h, Buffer.from('x')]);
    })()],
  ] as const) {
    const d = decodeBinaryWorkerMessage(frame);
    assert.equal(d.ok, false, what);
    if (!d.ok) assert.equal(d.closeCode, 1002, what);
  }
  assert.equal(decodeBinaryServerMessage(header('{"type":"request","request_id":"r"}', 'x')).ok, false, 'a request missing fields');
});
