// Property tests of the codec and the hand-written hot-path decoders (issue 12): whatever a peer
// sends, a frame either decodes to exactly what the zod schema accepts, or is a typed failure with
// close code 1002; nothing throws, and nothing decodes to less than (or other than) what was sent.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  ServerMessage,
  WorkerMessage,
  decodeBinaryServerMessage,
  decodeBinaryWorkerMessage,
  decodeServerMessage,
  decodeWorkerMessage,
  encode,
  encodeBinary,
  type Decoded,
} from '../../src/protocol/index.js';
import { SseSplitter } from '../../src/worker/sse-splitter.js';
import { UsageCollector } from '../../src/worker/usage.js';

const RUNS = { numRuns: 1000 };

/** A field's value: mostly one of the right type, sometimes anything JSON can hold. */
const field = <T>(good: fc.Arbitrary<T>): fc.Arbitrary<unknown> => fc.oneof({ weight: 4, arbitrary: good as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: fc.jsonValue() });
const id = fc.oneof(fc.string({ minLength: 1, maxLength: 12 }), fc.string({ minLength: 250, maxLength: 260 }), fc.constant(''));
const headers = fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 });
const counts = fc.record({ prompt_tokens: field(fc.nat(100)), completion_tokens: field(fc.integer({ min: -1, max: 100 })), total_tokens: field(fc.nat()) }, { requiredKeys: [] });

const WORKER_TYPES = ['register', 'models_update', 'response_chunk', 'response_complete', 'pong', 'error', 'draining', 'bogus', '__proto__', 'constructor'];
const SERVER_TYPES = ['register_ack', 'request', 'cancel', 'ping', 'graceful_shutdown', 'models_refresh', 'credit', 'bogus', 'toString'];

/** Objects shaped like worker messages, with every field sometimes missing or of the wrong type. */
const workerish = fc.record(
  {
    type: fc.constantFrom(...WORKER_TYPES),
    request_id: field(id),
    chunk: field(fc.string()),
    status_code: field(fc.oneof(fc.integer({ min: 95, max: 605 }), fc.double())),
    headers: field(headers),
    body: field(fc.string()),
    token_counts: field(fc.oneof(counts, fc.constant([]), fc.constant(null))),
    worker_name: field(fc.string()),
    models: field(fc.array(fc.string({ maxLength: 6 }), { maxLength: 3 })),
    max_concurrent: field(fc.integer({ min: -2, max: 10 })),
    current_load: field(fc.integer({ min: -2, max: 10 })),
    code: field(fc.string({ maxLength: 8 })),
    message: field(fc.string({ maxLength: 8 })),
    extensions: field(fc.array(fc.string({ maxLength: 12 }), { maxLength: 3 })),
    extra: fc.jsonValue(),
  },
  { requiredKeys: ['type'] },
);

const serverish = fc.record(
  {
    type: fc.constantFrom(...SERVER_TYPES),
    request_id: field(id),
    worker_id: field(fc.string({ maxLength: 6 })),
    models: field(fc.array(fc.string({ maxLength: 6 }), { maxLength: 3 })),
    model: field(fc.string({ maxLength: 6 })),
    endpoint_path: field(fc.constantFrom('/v1/chat/completions', '/v1/messages', '')),
    is_streaming: field(fc.boolean()),
    body: field(fc.string()),
    headers: field(headers),
    reason: field(fc.oneof(fc.constantFrom('timeout', 'client_disconnect', 'nope'), fc.record({ other: field(fc.string({ maxLength: 5 })) }))),
    timestamp_unix_ms: field(fc.double()),
    bytes: field(fc.integer({ min: -1, max: 1 << 20 })),
    flow_window_bytes: field(fc.integer({ min: -1, max: 1 << 20 })),
    drain_timeout_secs: field(fc.integer({ min: -1, max: 60 })),
    extra: fc.jsonValue(),
  },
  { requiredKeys: ['type'] },
);

/** The decoder agrees with the schema: accepted exactly when zod accepts, and then with zod's value. */
function agrees(decoded: Decoded<unknown>, schema: typeof WorkerMessage | typeof ServerMessage, sent: unknown): void {
  const z = schema.safeParse(sent);
  assert.equal(decoded.ok, z.success, `decoder said ${decoded.ok ? 'ok' : `no (${(decoded as { reason: string }).reason})`}, the schema ${z.success ? 'ok' : `no (${z.error?.issues[0]?.message})`} for ${JSON.stringify(sent)}`);
  if (decoded.ok) assert.deepEqual(schema.parse(decoded.msg), z.data, 'the decoded message holds what the schema reads');
  else {
    assert.equal(decoded.closeCode, 1002);
    assert.ok(decoded.reason.length > 0 && decoded.reason.length <= 120, 'a close reason fits a close frame');
  }
}

test('text frames from a worker: the decoder (fast paths included) accepts exactly what the schema accepts', () => {
  fc.assert(
    fc.property(workerish, (obj) => {
      const sent = JSON.parse(JSON.stringify(obj)) as unknown;
      agrees(decodeWorkerMessage(JSON.stringify(obj)), WorkerMessage, sent);
    }),
    RUNS,
  );
});

test('text frames from a server: the decoder (request fast path included) accepts exactly what the schema accepts', () => {
  fc.assert(
    fc.property(serverish, (obj) => {
      const sent = JSON.parse(JSON.stringify(obj)) as unknown;
      agrees(decodeServerMessage(JSON.stringify(obj)), ServerMessage, sent);
    }),
    RUNS,
  );
});

test('any text at all decodes or fails with 1002, without throwing', () => {
  const text = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.jsonValue().map((v) => JSON.stringify(v)), workerish.map((o) => JSON.stringify(o).slice(0, -1 - Math.floor(Math.random() * 3))));
  fc.assert(
    fc.property(text, (t) => {
      for (const d of [decodeWorkerMessage(t), decodeServerMessage(t)] as Decoded<unknown>[]) if (!d.ok) assert.equal(d.closeCode, 1002);
    }),
    RUNS,
  );
});

/** A binary frame: [u32 BE header length][header][payload], with the length sometimes lying. */
const binaryFrame = (objects: fc.Arbitrary<Record<string, unknown>>) =>
  fc
    .record({
      header: objects.map((o) => Buffer.from(JSON.stringify(o))),
      payload: fc.oneof(fc.string().map((s) => Buffer.from(s)), fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a))),
      lie: fc.oneof({ weight: 5, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -8, max: 8 }) }),
    })
    .map(({ header, payload, lie }) => {
      const len = Buffer.alloc(4);
      len.writeUInt32BE(Math.max(0, header.length + lie));
      return Buffer.concat([len, header, payload]);
    });

/** What the binary layout means, read independently: the header with the payload as its field. */
function readLayout(frame: Buffer): unknown {
  if (frame.length < 4) return undefined;
  const h = frame.readUInt32BE(0);
  if (h > frame.length - 4) return undefined;
  let header: any;
  try {
    header = JSON.parse(frame.subarray(4, 4 + h).toString());
  } catch {
    return undefined;
  }
  const field = header?.type === 'response_chunk' ? 'chunk' : header?.type === 'request' || header?.type === 'response_complete' ? 'body' : undefined;
  if (!field || Array.isArray(header)) return undefined;
  return { ...header, [field]: frame.subarray(4 + h).toString() };
}

test('binary frames decode to exactly the bytes they carry, or fail with 1002', () => {
  const check = (frame: Buffer, decode: (b: Buffer) => Decoded<unknown>, schema: typeof WorkerMessage | typeof ServerMessage): void => {
    const d = decode(frame);
    if (!d.ok) return assert.equal(d.closeCode, 1002);
    const meant = readLayout(frame);
    assert.ok(meant, 'decoded a frame the layout does not describe');
    assert.ok(schema.safeParse(meant).success, 'decoded a frame the schema rejects');
    const msg = d.msg as Record<string, unknown>;
    const field = msg['type'] === 'response_chunk' ? 'chunk' : 'body';
    const h = frame.readUInt32BE(0);
    // Lossless: the payload field holds the frame's payload bytes, not a replacement-character copy.
    assert.ok(Buffer.from(msg[field] as string).equals(frame.subarray(4 + h)), `the ${field} is not the payload's bytes`);
  };
  fc.assert(
    fc.property(binaryFrame(workerish), (frame) => check(frame, decodeBinaryWorkerMessage, WorkerMessage)),
    RUNS,
  );
  fc.assert(
    fc.property(binaryFrame(serverish), (frame) => check(frame, decodeBinaryServerMessage, ServerMessage)),
    RUNS,
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      for (const d of [decodeBinaryWorkerMessage(Buffer.from(bytes)), decodeBinaryServerMessage(Buffer.from(bytes))] as Decoded<unknown>[]) if (!d.ok) assert.equal(d.closeCode, 1002);
    }),
    RUNS,
  );
});

test('every valid message survives encode → decode, as text and (payload types) as a binary frame', () => {
  const valid = workerish.map((o) => WorkerMessage.safeParse(JSON.parse(JSON.stringify(o)))).filter((z) => z.success).map((z) => z.data!);
  fc.assert(
    fc.property(valid, (msg) => {
      const t = decodeWorkerMessage(encode(msg));
      assert.ok(t.ok);
      assert.deepEqual(WorkerMessage.parse(t.msg), msg);
      const frame = encodeBinary(msg);
      if (frame) {
        const b = decodeBinaryWorkerMessage(frame);
        assert.ok(b.ok);
        assert.deepEqual(WorkerMessage.parse(b.msg), msg);
      }
    }),
    { numRuns: 500 },
  );
});

test('the SSE splitter emits whole events only, and loses or reorders nothing however the text is cut', () => {
  const event = fc.oneof(
    fc.string({ maxLength: 20 }).map((s) => `data: ${s.replace(/[\r\n]/g, ' ')}\n\n`),
    fc.string({ maxLength: 20 }).map((s) => `event: x\r\ndata: ${s.replace(/[\r\n]/g, ' ')}\r\n\r\n`),
    fc.string({ maxLength: 6 }),
  );
  fc.assert(
    fc.property(fc.array(event, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 12 }), (events, cuts) => {
      const text = events.join('');
      const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
      const s = new SseSplitter();
      let out = '';
      let from = 0;
      for (const p of [...points, text.length]) {
        const piece = s.push(text.slice(from, p));
        if (piece) assert.ok(piece.endsWith('\n\n') || piece.endsWith('\r\n\r\n'), `emitted a piece that does not end an event: ${JSON.stringify(piece)}`);
        out += piece;
        from = p;
      }
      assert.equal(out + s.flush(), text);
      assert.equal(s.buffered, 0);
    }),
    RUNS,
  );
});

test('usage extraction never throws and reports only counts the protocol can carry (non-negative safe integers)', () => {
  const big = fc.oneof(fc.nat(), fc.constantFrom(2 ** 53 - 1, 2 ** 53, 2 ** 52 + 1, 1e300));
  const huge = fc.record({ input_tokens: big, cache_read_input_tokens: big, prompt_tokens: big, completion_tokens: big, output_tokens: big }, { requiredKeys: [] });
  const usageish = fc.record({ usage: fc.oneof(counts, huge, fc.jsonValue()), message: fc.oneof(fc.record({ usage: fc.oneof(huge, fc.jsonValue()) }), fc.jsonValue()) }, { requiredKeys: [] });
  fc.assert(
    fc.property(usageish, fc.string({ maxLength: 10 }), fc.nat(40), (obj, junk, cut) => {
      const json = JSON.stringify(obj);
      const c = new UsageCollector();
      c.fromEvents(`data: ${json}\n\ndata: ${json.slice(0, cut)}${junk}\n\n`);
      c.fromBody(json + junk);
      for (const r of [c.result(), UsageCollector.fromBytes(Buffer.from(json.slice(cut) + junk))]) {
        if (r === undefined) continue;
        for (const v of [r.prompt_tokens, r.completion_tokens, r.total_tokens]) if (v !== undefined) assert.ok(Number.isSafeInteger(v) && v >= 0, `count ${v}`);
        assert.ok(WorkerMessage.safeParse({ type: 'response_complete', request_id: 'r', status_code: 200, token_counts: r }).success, `the server takes ${JSON.stringify(r)}`);
      }
    }),
    RUNS,
  );
});
