// Integration tests of the relay core with real processes (dist/): one server, three workers, mock
// backends, driven by the official openai and @anthropic-ai/sdk clients, fetch, node:http and curl.
//
// Cluster (deterministic /v1/models = m-a, m-b, m-down):
//   worker A  (m-a)    → mock "alpha"
//   worker B  (m-b)    → mock "beta"
//   worker D  (m-down) → a closed port (a "gamma" mock is started on that port later)
// plus a small second server (--max-body-bytes 1024) with no workers, for 413s.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import OpenAI, { APIError } from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import WebSocket from 'ws';
import { SECRET, freePort, health, killAll, startMock, startServer, startWorker, until, type MockProc, type Proc, type ServerProc } from '../helpers/cluster.js';

const execFileP = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const T = { timeout: 15_000 };

let server: ServerProc;
let small: ServerProc;
let mockA: MockProc;
let mockB: MockProc;
let workerA: Proc;
let workerB: Proc;
let workerDown: Proc;
let downPort: number;
let openai: OpenAI;
let anthropic: Anthropic;

before(async () => {
  downPort = await freePort(); // nothing listens there
  [server, small, mockA, mockB] = await Promise.all([
    startServer(),
    startServer(['--max-body-bytes', '1024']),
    startMock(['--name', 'alpha', '--models', 'm-a', '--tokens', '4']),
    startMock(['--name', 'beta', '--models', 'm-b', '--tokens', '4']),
  ]);
  [workerA, workerB, workerDown] = await Promise.all([
    startWorker({ server, backend: mockA.url, name: 'wa', models: 'm-a' }),
    startWorker({ server, backend: mockB.url, name: 'wb', models: 'm-b' }),
    startWorker({ server, backend: `http://127.0.0.1:${downPort}`, name: 'wdown', models: 'm-down' }),
  ]);
  openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'sk-test', maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: server.url, apiKey: 'sk-ant-test', maxRetries: 0 });
});

after(killAll);

// ---------- helpers ----------

function post(url: string, body: string | object, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** `data:` payloads of an SSE text, in order (one per event). */
function sseData(text: string): string[] {
  return text
    .split(/\r?\n\r?\n/)
    .map((ev) => ev.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n'))
    .filter((d) => d !== '');
}

/** `event:` names of an SSE text, in order. */
function sseEvents(text: string): string[] {
  return text
    .split(/\r?\n\r?\n/)
    .map((ev) => ev.split(/\r?\n/).find((l) => l.startsWith('event:'))?.slice(6).trim())
    .filter((e): e is string => e !== undefined);
}

async function mockRequests(): Promise<[number, number]> {
  const [a, b] = await Promise.all([mockA.stats(), mockB.stats()]);
  return [a.requests, b.requests];
}

const userMsg = [{ role: 'user' as const, content: 'hello there' }];

// ---------- 1. non-streaming chat ----------

test('1. non-streaming chat via the openai SDK returns content and usage', T, async () => {
  const r = await openai.chat.completions.create({ model: 'm-a', messages: userMsg }, { headers: { 'x-mock-tokens': '3' } });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.model, 'm-a');
  assert.equal(r.choices[0]?.message.content, '[alpha] tok1 tok2 tok3');
  assert.equal(r.choices[0]?.finish_reason, 'stop');
  assert.deepEqual(r.usage, { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 });
});

// ---------- 2. streaming chat ----------

test('2. streaming chat via the openai SDK: chunks in order, text assembled, usage chunk last; SSE headers', T, async () => {
  const stream = await openai.chat.completions.create(
    { model: 'm-a', messages: userMsg, stream: true, stream_options: { include_usage: true } },
    { headers: { 'x-mock-tokens': '5' } },
  );
  const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
  for await (const c of stream) chunks.push(c);
  const pieces = chunks.map((c) => c.choices[0]?.delta?.content).filter((p): p is string => !!p);
  assert.deepEqual(pieces, ['[alpha] tok1', ' tok2', ' tok3', ' tok4', ' tok5']);
  assert.equal(pieces.join(''), '[alpha] tok1 tok2 tok3 tok4 tok5');
  assert.equal(chunks[0]?.choices[0]?.delta?.role, 'assistant');
  assert.ok(chunks.some((c) => c.choices[0]?.finish_reason === 'stop'), 'a finish chunk arrives');
  const last = chunks.at(-1)!;
  assert.deepEqual(last.choices, [], 'the usage chunk is last and has no choices');
  assert.deepEqual(last.usage, { prompt_tokens: 2, completion_tokens: 5, total_tokens: 7 });
  assert.equal(chunks.filter((c) => c.usage).length, 1);

  const res = await post(`${server.url}/v1/chat/completions`, { model: 'm-a', messages: userMsg, stream: true }, { 'x-mock-tokens': '2' });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  assert.equal(res.headers.get('cache-control'), 'no-cache');
  assert.equal(res.headers.get('x-accel-buffering'), 'no');
  const data = sseData(await res.text());
  assert.equal(data.at(-1), '[DONE]');
  assert.equal(
    data.slice(0, -1).map((d) => (JSON.parse(d) as OpenAI.Chat.Completions.ChatCompletionChunk).choices[0]?.delta?.content ?? '').join(''),
    '[alpha] tok1 tok2',
  );
});

test('2b. streaming chat through curl -N: SSE headers and every event', T, async () => {
  const body = JSON.stringify({ model: 'm-b', messages: userMsg, stream: true });
  const { stdout } = await execFileP(
    'curl',
    ['-sS', '-N', '-i', '-X', 'POST', `${server.url}/v1/chat/completions`, '-H', 'content-type: application/json', '-H', 'x-mock-tokens: 3', '--data-binary', body],
    { encoding: 'utf8', timeout: 10_000 },
  );
  const split = stdout.indexOf('\r\n\r\n');
  const head = stdout.slice(0, split).toLowerCase();
  assert.match(head, /^http\/1\.1 200/);
  assert.match(head, /\r\ncontent-type: text\/event-stream/);
  assert.match(head, /\r\ncache-control: no-cache/);
  assert.match(head, /\r\nx-accel-buffering: no/);
  const data = sseData(stdout.slice(split + 4));
  assert.equal(data.at(-1), '[DONE]');
  const text = data.slice(0, -1).map((d) => (JSON.parse(d) as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content ?? '').join('');
  assert.equal(text, '[beta] tok1 tok2 tok3');
});

// ---------- 3. chunk-by-chunk passthrough ----------

test('3. streamed chunks are passed through as they are produced, not buffered to the end', T, async () => {
  // A long, slow stream: the test reads the first tokens, then asks the backend whether it is still
  // generating. A relay that held chunks back would deliver nothing until the backend had finished.
  const before = await mockA.stats();
  const ac = new AbortController();
  const stream = await openai.chat.completions.create(
    { model: 'm-a', messages: userMsg, stream: true },
    { headers: { 'x-mock-tokens': '200', 'x-mock-delay-ms': '20' }, signal: ac.signal },
  );
  const contents: string[] = [];
  for await (const c of stream) {
    const content = c.choices[0]?.delta?.content;
    if (content) contents.push(content);
    if (contents.length === 3) break;
  }
  ac.abort();
  assert.deepEqual(contents, ['[alpha] tok1', ' tok2', ' tok3'], 'the first tokens, in order');
  const during = await mockA.stats();
  assert.equal(during.completed, before.completed, 'the backend had already finished the stream: chunks were held back');
  await until(async () => (await mockA.stats()).aborted > before.aborted, 'the abandoned stream to be aborted at the backend');
});

// ---------- 4. other OpenAI endpoints ----------

test('4a. /v1/completions via the openai SDK', T, async () => {
  const r = await openai.completions.create({ model: 'm-a', prompt: 'say something nice' }, { headers: { 'x-mock-tokens': '2' } });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.choices[0]?.text, '[alpha] tok1 tok2');
  assert.deepEqual(r.usage, { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 });
  const before = (await mockA.stats()).byPath['/v1/completions'];
  assert.ok(before !== undefined && before >= 1, 'the backend saw /v1/completions');
});

test('4b. /v1/embeddings via the openai SDK', T, async () => {
  const r = await openai.embeddings.create({ model: 'm-b', input: ['one two', 'three'], encoding_format: 'float' });
  assert.equal(r.object, 'list');
  assert.equal(r.data.length, 2);
  for (const [i, d] of r.data.entries()) {
    assert.equal(d.index, i);
    assert.equal(d.embedding.length, 8);
    assert.ok(d.embedding.every((x) => typeof x === 'number'));
  }
  assert.notDeepEqual(r.data[0]!.embedding, r.data[1]!.embedding);
  assert.deepEqual(r.usage, { prompt_tokens: 3, total_tokens: 3 });
  assert.equal((await mockB.stats()).lastRequest?.path, '/v1/embeddings');
});

test('4c. /v1/responses, non-streaming and streaming (raw fetch)', T, async () => {
  const res = await post(`${server.url}/v1/responses`, { model: 'm-a', input: 'hi there you' }, { 'x-mock-tokens': '3' });
  assert.equal(res.status, 200);
  const body = (await res.json()) as { object: string; status: string; output: { content: { text: string }[] }[]; usage: Record<string, number> };
  assert.equal(body.object, 'response');
  assert.equal(body.status, 'completed');
  assert.equal(body.output[0]?.content[0]?.text, '[alpha] tok1 tok2 tok3');
  assert.deepEqual(body.usage, { input_tokens: 3, output_tokens: 3, total_tokens: 6 });

  const sres = await post(`${server.url}/v1/responses`, { model: 'm-a', input: 'hi', stream: true }, { 'x-mock-tokens': '3' });
  assert.equal(sres.status, 200);
  assert.match(sres.headers.get('content-type') ?? '', /^text\/event-stream/);
  const text = await sres.text();
  const events = sseEvents(text);
  assert.equal(events[0], 'response.created');
  assert.equal(events.at(-1), 'response.completed');
  const datas = sseData(text).map((d) => JSON.parse(d) as { type: string; delta?: string; sequence_number: number; response?: { usage: unknown } });
  assert.deepEqual(datas.map((d) => d.type), events);
  assert.equal(datas.filter((d) => d.type === 'response.output_text.delta').map((d) => d.delta).join(''), '[alpha] tok1 tok2 tok3');
  assert.deepEqual(datas.map((d) => d.sequence_number), datas.map((_, i) => i), 'events arrive in order');
  assert.deepEqual(datas.at(-1)?.response?.usage, { input_tokens: 1, output_tokens: 3, total_tokens: 4 });
});

// ---------- 5. Anthropic ----------

test('5a. anthropic messages.create', T, async () => {
  const m = await anthropic.messages.create(
    { model: 'm-b', max_tokens: 64, messages: [{ role: 'user', content: 'hello claude' }] },
    { headers: { 'x-mock-tokens': '3' } },
  );
  assert.equal(m.type, 'message');
  assert.equal(m.role, 'assistant');
  assert.equal(m.content[0]?.type, 'text');
  assert.equal((m.content[0] as Anthropic.TextBlock).text, '[beta] tok1 tok2 tok3');
  assert.equal(m.stop_reason, 'end_turn');
  assert.equal(m.usage.input_tokens, 2);
  assert.equal(m.usage.output_tokens, 3);
  assert.equal((await mockB.stats()).lastRequest?.path, '/v1/messages');
});

test('5b. anthropic messages.stream: text arrives, finalMessage has usage', T, async () => {
  const stream = anthropic.messages.stream(
    { model: 'm-a', max_tokens: 64, messages: [{ role: 'user', content: 'stream please' }] },
    { headers: { 'x-mock-tokens': '4' } },
  );
  const texts: string[] = [];
  stream.on('text', (t) => texts.push(t));
  const final = await stream.finalMessage();
  assert.deepEqual(texts, ['[alpha] tok1', ' tok2', ' tok3', ' tok4']);
  assert.equal((final.content[0] as Anthropic.TextBlock).text, '[alpha] tok1 tok2 tok3 tok4');
  assert.equal(final.usage.input_tokens, 2);
  assert.equal(final.usage.output_tokens, 4);
  assert.equal(final.stop_reason, 'end_turn');
});

// ---------- 6. /v1/models ----------

test('6. /v1/models lists exactly the models of the connected workers', T, async () => {
  const res = await fetch(`${server.url}/v1/models`);
  assert.equal(res.status, 200);
  const body = (await res.json()) as { object: string; data: { id: string; object: string; created: number; owned_by: string }[] };
  assert.equal(body.object, 'list');
  assert.deepEqual(body.data.map((m) => m.id).sort(), ['m-a', 'm-b', 'm-down']);
  for (const m of body.data) {
    assert.deepEqual(Object.keys(m).sort(), ['created', 'id', 'object', 'owned_by']);
    assert.equal(m.object, 'model');
    assert.ok(Number.isInteger(m.created) && m.created > 1_600_000_000, `created is unix seconds: ${m.created}`);
    assert.equal(typeof m.owned_by, 'string');
  }
  // the openai SDK reads the same list
  const ids: string[] = [];
  for await (const m of openai.models.list()) ids.push(m.id);
  assert.deepEqual(ids.sort(), ['m-a', 'm-b', 'm-down']);
  // a server without workers lists nothing
  const empty = (await (await fetch(`${small.url}/v1/models`)).json()) as { object: string; data: unknown[] };
  assert.deepEqual(empty, { object: 'list', data: [] });
});

test('6b. a wildcard worker (models ["*"], raw protocol) serves any model but "*" is never listed', T, async () => {
  const ws = new WebSocket(`${small.url.replace(/^http/, 'ws')}/v1/worker/connect`, { headers: { 'x-worker-secret': SECRET } });
  const seen: { model: string; endpoint_path: string }[] = [];
  const acked = new Promise<{ models: string[] }>((resolve, reject) => {
    ws.on('error', reject);
    ws.on('message', (data) => {
      const msg = JSON.parse(String(data)) as { type: string; request_id?: string; model?: string; endpoint_path?: string; models?: string[] };
      if (msg.type === 'register_ack') resolve(msg as { models: string[] });
      if (msg.type === 'request') {
        seen.push({ model: msg.model!, endpoint_path: msg.endpoint_path! });
        const body = JSON.stringify({ served_by: 'wildcard', model: msg.model });
        ws.send(JSON.stringify({ type: 'response_complete', request_id: msg.request_id, status_code: 200, headers: { 'content-type': 'application/json' }, body }));
      }
    });
  });
  ws.on('open', () => ws.send(JSON.stringify({ type: 'register', worker_name: 'wild', models: ['*'], max_concurrent: 2, protocol_version: '2026-04-bridge-v1' })));
  try {
    const ack = await acked;
    assert.deepEqual(ack.models, ['*']);
    const list = (await (await fetch(`${small.url}/v1/models`)).json()) as { object: string; data: unknown[] };
    assert.deepEqual(list, { object: 'list', data: [] });
    assert.equal((await health(small)).workers_connected, 1);
    const res = await post(`${small.url}/v1/chat/completions`, { model: 'any-model-at-all', messages: userMsg });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { served_by: 'wildcard', model: 'any-model-at-all' });
    assert.deepEqual(seen, [{ model: 'any-model-at-all', endpoint_path: '/v1/chat/completions' }]);
  } finally {
    ws.close(1000, 'done');
  }
  await until(async () => (await health(small)).workers_connected === 0, 'the wildcard worker to be gone');
});

// ---------- 7. routing ----------

test('7. routing: m-a only ever reaches backend A, m-b only backend B', T, async () => {
  const [a0, b0] = await mockRequests();
  const models = ['m-a', 'm-b', 'm-a', 'm-a', 'm-b', 'm-a', 'm-b', 'm-a', 'm-a', 'm-b', 'm-a', 'm-a'];
  const results = await Promise.all(
    models.map((model) => openai.chat.completions.create({ model, messages: userMsg }, { headers: { 'x-mock-tokens': '1' } }).withResponse()),
  );
  for (const [i, { data, response }] of results.entries()) {
    const want = models[i] === 'm-a' ? 'alpha' : 'beta';
    assert.equal(data.choices[0]?.message.content, `[${want}] tok1`, `request ${i} for ${models[i]}`);
    assert.equal(response.headers.get('x-mock-backend'), want);
    assert.equal(data.model, models[i]);
  }
  const [a1, b1] = await mockRequests();
  assert.equal(a1 - a0, models.filter((m) => m === 'm-a').length);
  assert.equal(b1 - b0, models.filter((m) => m === 'm-b').length);
});

// ---------- 8. byte-exact forwarding, headers ----------

test('8a. the request body reaches the backend byte for byte', T, async () => {
  const raw = '{ "messages" :[ {"content":"caf\\u00e9 \\ud83d\\ude00 and 🎉 literally",   "role":"user"}],\n\t"stream":false ,  "model":"m-a" , "z":1.50, "a":[ ] }\n';
  const res = await post(`${server.url}/v1/chat/completions`, raw, { 'x-mock-tokens': '1' });
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  const last = (await mockA.stats()).lastRequest;
  assert.equal(last?.path, '/v1/chat/completions');
  assert.equal(last?.body, raw);
});

test('8b. end-to-end headers reach the backend; hop-by-hop ones do not', T, async () => {
  const body = JSON.stringify({ model: 'm-b', messages: userMsg });
  const { status, resHeaders } = await new Promise<{ status: number; resHeaders: Record<string, unknown> }>((resolve, reject) => {
    const req = httpRequest(
      `${server.url}/v1/chat/completions`,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'x-custom-thing': 'custom value 42',
          authorization: 'Bearer sk-client',
          connection: 'x-drop-me',
          'keep-alive': 'timeout=5',
          'proxy-authorization': 'Basic c2VjcmV0',
          te: 'trailers',
          'x-drop-me': 'named by Connection',
          'x-mock-tokens': '1',
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, resHeaders: res.headers }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
  assert.equal(status, 200);
  // the way back: the backend's end-to-end headers come through, its hop-by-hop ones don't
  assert.equal(resHeaders['x-mock-backend'], 'beta');
  assert.notEqual(resHeaders['keep-alive'], 'timeout=30', "the backend's Keep-Alive (30 s) is not relayed");
  const headers = (await mockB.stats()).lastRequest?.headers ?? {};
  assert.equal(headers['x-custom-thing'], 'custom value 42');
  assert.equal(headers['authorization'], 'Bearer sk-client');
  assert.equal(headers['keep-alive'], undefined);
  assert.equal(headers['proxy-authorization'], undefined);
  assert.equal(headers['te'], undefined);
  assert.equal(headers['x-drop-me'], undefined);
  assert.doesNotMatch(String(headers['connection'] ?? ''), /x-drop-me/, "the client's Connection header is not forwarded");
  assert.equal(headers['x-worker-secret'], undefined);
});

// ---------- 9. UTF-8 split across reads ----------

test('9. multi-byte characters split across backend writes arrive intact (stream and non-stream)', T, async () => {
  const whole = await openai.chat.completions.create({ model: 'm-a', messages: userMsg }, { headers: { 'x-mock-tokens': '2', 'x-mock-split-utf8': '1' } });
  assert.equal(whole.choices[0]?.message.content, '[alpha] tok1 tok2 é😀');

  const stream = await openai.chat.completions.create(
    { model: 'm-a', messages: userMsg, stream: true },
    { headers: { 'x-mock-tokens': '2', 'x-mock-split-utf8': '1' } },
  );
  let text = '';
  for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
  assert.equal(text, '[alpha] tok1 tok2 é😀');
  assert.ok(!text.includes('\uFFFD'));

  // the raw bytes (curl) must be valid UTF-8 and hold the characters intact
  const { stdout } = await execFileP(
    'curl',
    ['-sS', '-N', '-X', 'POST', `${server.url}/v1/chat/completions`, '-H', 'content-type: application/json', '-H', 'x-mock-split-utf8: 1', '-H', 'x-mock-tokens: 2',
      '--data-binary', JSON.stringify({ model: 'm-a', messages: userMsg, stream: true })],
    { encoding: 'buffer', timeout: 10_000 },
  );
  const decoded = new TextDecoder('utf-8', { fatal: true }).decode(stdout);
  const pieces = sseData(decoded).filter((d) => d !== '[DONE]').map((d) => (JSON.parse(d) as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content ?? '');
  assert.equal(pieces.join(''), '[alpha] tok1 tok2 é😀');
  assert.ok(!decoded.includes('\uFFFD'));
});

// ---------- 10. backend errors ----------

test('10a. backend error statuses and bodies pass through (non-streaming)', T, async () => {
  for (const status of [429, 500]) {
    const res = await post(`${server.url}/v1/chat/completions`, { model: 'm-a', messages: userMsg }, { 'x-mock-status': String(status) });
    assert.equal(res.status, status);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    const type = status === 429 ? 'rate_limit_error' : 'server_error';
    assert.equal(await res.text(), JSON.stringify({ error: { message: `mock backend alpha failed with status ${status}`, type, code: `mock_${status}` } }));
  }
  // Anthropic-shaped backend error on /v1/messages
  const res = await post(`${server.url}/v1/messages`, { model: 'm-b', max_tokens: 8, messages: userMsg }, { 'x-mock-status': '529' });
  assert.equal(res.status, 529);
  assert.deepEqual(await res.json(), { type: 'error', error: { type: 'api_error', message: 'mock backend beta failed with status 529' } });
});

test('10b. a streaming request the backend fails gets the status and JSON body, not a 200 event stream', T, async () => {
  const res = await post(`${server.url}/v1/chat/completions`, { model: 'm-a', messages: userMsg, stream: true }, { 'x-mock-status': '500' });
  assert.equal(res.status, 500);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  assert.deepEqual(await res.json(), { error: { message: 'mock backend alpha failed with status 500', type: 'server_error', code: 'mock_500' } });

  await assert.rejects(
    async () => {
      const s = await openai.chat.completions.create({ model: 'm-a', messages: userMsg, stream: true }, { headers: { 'x-mock-status': '500' } });
      for await (const _ of s) {
        // nothing should arrive
      }
    },
    (err: unknown) => {
      assert.ok(err instanceof APIError, `expected an APIError, got ${String(err)}`);
      assert.equal(err.status, 500);
      assert.match(err.message, /mock backend alpha failed with status 500/);
      return true;
    },
  );
});

// ---------- 11. bad input ----------

const BAD_BODIES: [string, string][] = [
  ['invalid JSON', '{"model": "m-a", "messages": ['],
  ['a JSON array', '[{"model":"m-a"}]'],
  ['missing model', '{"messages":[{"role":"user","content":"hi"}]}'],
  ['non-string model', '{"model":42,"messages":[]}'],
  ['non-boolean stream', '{"model":"m-a","stream":"yes","messages":[]}'],
];

test('11a. bad input on /v1/chat/completions: 400 in the OpenAI shape, no worker involved', T, async () => {
  const before = await mockRequests();
  for (const [what, body] of BAD_BODIES) {
    const res = await post(`${server.url}/v1/chat/completions`, body);
    assert.equal(res.status, 400, what);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    const e = (await res.json()) as { error: { message: unknown; type: unknown; code: unknown } };
    assert.deepEqual(Object.keys(e), ['error'], what);
    assert.equal(typeof e.error.message, 'string', what);
    assert.ok((e.error.message as string).length > 0);
    assert.equal(e.error.type, 'invalid_request_error', what);
    assert.equal(typeof e.error.code, 'string', what);
  }
  assert.deepEqual(await mockRequests(), before);
});

test('11b. bad input on /v1/messages: 400 in the Anthropic shape, no worker involved', T, async () => {
  const before = await mockRequests();
  for (const [what, body] of BAD_BODIES) {
    const res = await post(`${server.url}/v1/messages`, body.replaceAll('m-a', 'm-b'));
    assert.equal(res.status, 400, what);
    const e = (await res.json()) as { type: unknown; error: { type: unknown; message: unknown } };
    assert.equal(e.type, 'error', what);
    assert.equal(e.error.type, 'invalid_request_error', what);
    assert.equal(typeof e.error.message, 'string', what);
    assert.ok((e.error.message as string).length > 0);
  }
  assert.deepEqual(await mockRequests(), before);
});

test('11c. an oversized body gets 413 in the error shape (--max-body-bytes 1024)', T, async () => {
  const big = JSON.stringify({ model: 'm-a', messages: [{ role: 'user', content: 'x'.repeat(2000) }] });
  const res = await post(`${small.url}/v1/chat/completions`, big);
  assert.equal(res.status, 413);
  const e = (await res.json()) as { error: { message: string; type: string; code: string } };
  assert.equal(e.error.code, 'body_too_large');
  assert.equal(e.error.type, 'invalid_request_error');
  assert.match(e.error.message, /1024/);

  const ares = await post(`${small.url}/v1/messages`, big);
  assert.equal(ares.status, 413);
  const ae = (await ares.json()) as { type: string; error: { type: string; message: string } };
  assert.equal(ae.type, 'error');
  assert.equal(ae.error.type, 'request_too_large');

  // just under the limit is read and judged on its content (here: no worker serves the model)
  const ok = JSON.stringify({ model: 'm-a', messages: [{ role: 'user', content: 'x'.repeat(900) }] });
  assert.ok(Buffer.byteLength(ok) <= 1024);
  const nres = await post(`${small.url}/v1/chat/completions`, ok);
  assert.equal(nres.status, 404);
  await nres.arrayBuffer();
});

test('11d. an oversized body sent chunked (no content-length) also gets 413', T, async () => {
  const chunk = Buffer.from('x'.repeat(512));
  const status = await new Promise<number>((resolve, reject) => {
    const req = httpRequest(`${small.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.write('{"model":"m-a","pad":"');
    for (let i = 0; i < 4; i++) req.write(chunk);
    req.end('"}');
  });
  assert.equal(status, 413);
});

// ---------- 12. worker authentication ----------

function upgradeStatus(headers: Record<string, string>): Promise<number> {
  const url = `${server.url.replace(/^http/, 'ws')}/v1/worker/connect`;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.on('open', () => {
      ws.terminate();
      reject(new Error('the socket opened'));
    });
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      ws.terminate();
      resolve(res.statusCode ?? 0);
    });
    ws.on('error', (err) => reject(err));
  });
}

test('12a. a raw upgrade with a wrong or missing secret gets 401 and never opens', T, async () => {
  assert.equal(await upgradeStatus({ 'x-worker-secret': 'wrong' }), 401);
  assert.equal(await upgradeStatus({}), 401);
  await server.waitMsg('worker authentication failed', { reason: 'wrong secret' });
  await server.waitMsg('worker authentication failed', { reason: 'missing secret' });
  // the right secret does open (so the 401s above are about the secret)
  const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/v1/worker/connect`, { headers: { 'x-worker-secret': SECRET } });
  await new Promise<void>((resolve, reject) => {
    ws.on('open', () => resolve());
    ws.on('unexpected-response', (_q, res) => reject(new Error(`status ${res.statusCode}`)));
    ws.on('error', reject);
  });
  ws.terminate();
  assert.equal((await health(server)).workers_connected, 3);
});

test('12b. a worker process with the wrong secret logs a clear 401 error and never registers', T, async () => {
  const linesBefore = server.lines.length;
  const w = await startWorker({ server, backend: mockA.url, name: 'wrong', models: 'm-wrong', secret: 'not-the-secret', waitRegistered: false });
  const line = await w.waitFor((l) => typeof l.msg === 'string' && /401/.test(l.msg), 'a 401 error line');
  assert.equal(line['level'], 'error');
  assert.match(String(line.msg), /secret/i);
  await server.waitFor(
    (l) => l.msg === 'worker authentication failed' && l['reason'] === 'wrong secret' && server.lines.indexOf(l) >= linesBefore,
    'the server noting the failure',
  );
  assert.equal(w.count('registered'), 0);
  const h = await health(server);
  assert.equal(h.workers_connected, 3);
  const models = (await (await fetch(`${server.url}/v1/models`)).json()) as { data: { id: string }[] };
  assert.ok(!models.data.some((m) => m.id === 'm-wrong'));
  await w.kill();
});

// ---------- 13. unknown model ----------

test('13. an unknown model gets 404 model_not_found at once, naming the model', T, async () => {
  const before = await mockRequests();
  // 404 model_not_found (not a 503 queue_timeout 30 s later) is itself the proof it did not queue.
  const res = await post(`${server.url}/v1/chat/completions`, { model: 'no-such-model-xyz', messages: userMsg });
  assert.equal(res.status, 404);
  const e = (await res.json()) as { error: { message: string; type: string; code: string } };
  assert.equal(e.error.code, 'model_not_found');
  assert.match(e.error.message, /no-such-model-xyz/);

  const ares = await post(`${server.url}/v1/messages`, { model: 'claude-nope', max_tokens: 8, messages: userMsg });
  assert.equal(ares.status, 404);
  const ae = (await ares.json()) as { type: string; error: { type: string; message: string } };
  assert.equal(ae.type, 'error');
  assert.equal(ae.error.type, 'not_found_error');
  assert.match(ae.error.message, /claude-nope/);

  await assert.rejects(openai.chat.completions.create({ model: 'sdk-missing', messages: userMsg }), (err: unknown) => {
    assert.ok(err instanceof APIError);
    assert.equal(err.status, 404);
    assert.equal(err.code, 'model_not_found');
    return true;
  });
  assert.deepEqual(await mockRequests(), before);
});

// ---------- 13b. request ids ----------

test('13b. every answer carries an X-Request-Id that names the log line: success, stream, backend error, relay error', T, async () => {
  const ids: string[] = [];
  const check = async (res: Response, status: number): Promise<void> => {
    assert.equal(res.status, status);
    await res.text();
    const id = res.headers.get('x-request-id');
    assert.match(id ?? '', /^req_[0-9a-z]+$/, `x-request-id on a ${status}`);
    const line = await server.waitMsg('request finished', { request_id: id! });
    assert.equal(line['status'], status);
    ids.push(id!);
  };
  await check(await post(`${server.url}/v1/chat/completions`, { model: 'm-a', messages: userMsg }), 200);
  await check(await post(`${server.url}/v1/chat/completions`, { model: 'm-a', stream: true, messages: userMsg }), 200);
  await check(await post(`${server.url}/v1/chat/completions`, { model: 'm-a', messages: userMsg }, { 'x-mock-status': '500' }), 500);
  await check(await post(`${server.url}/v1/chat/completions`, { model: 'no-such-model-for-id', messages: userMsg }), 404);
  assert.equal(new Set(ids).size, ids.length, 'ids are unique');
});

// ---------- 14. health ----------

test('14. /health reports status, version, workers, queue depth and uptime', T, async () => {
  const res = await fetch(`${server.url}/health`);
  assert.equal(res.status, 200);
  const h = (await res.json()) as Record<string, unknown>;
  assert.equal(h['status'], 'ok');
  const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { version: string };
  assert.equal(h['version'], pkg.version);
  assert.equal(h['workers_connected'], 3);
  assert.equal(h['queue_depth'], 0);
  assert.ok(Number.isInteger(h['uptime_secs']) && (h['uptime_secs'] as number) >= 0, `uptime_secs ${String(h['uptime_secs'])}`);
  const s = (await (await fetch(`${small.url}/health`)).json()) as Record<string, unknown>;
  assert.equal(s['workers_connected'], 0);
});

// ---------- 15. backend down ----------

test('15. a backend that is down gives 502 naming it unreachable; the worker stays and serves once it is back', T, async () => {
  const res = await post(`${server.url}/v1/chat/completions`, { model: 'm-down', messages: userMsg });
  assert.equal(res.status, 502);
  const e = (await res.json()) as { error: { message: string; code: string } };
  assert.match(e.error.message, /backend/i);
  assert.match(e.error.message, /unreachable/i);
  assert.match(e.error.message, new RegExp(`127\\.0\\.0\\.1:${downPort}`));
  assert.equal(e.error.code, 'backend_unreachable');

  // Anthropic clients get their own shape
  const ares = await post(`${server.url}/v1/messages`, { model: 'm-down', max_tokens: 8, messages: userMsg });
  assert.equal(ares.status, 502);
  const ae = (await ares.json()) as { type: string; error: { message: string } };
  assert.equal(ae.type, 'error');
  assert.match(ae.error.message, /unreachable/i);

  assert.equal((await health(server)).workers_connected, 3);
  assert.equal(workerDown.count('disconnected from server'), 0);

  // bring a backend up on that port: the same worker serves from it
  const gamma = await startMock(['--listen', `127.0.0.1:${downPort}`, '--name', 'gamma', '--models', 'm-down', '--tokens', '2']);
  // Its health probes (every 0.5 s doubling to 5 s while down) notice, and the server is told.
  await server.waitMsg('worker backend up', { worker: 'wdown' });
  const r = await openai.chat.completions.create({ model: 'm-down', messages: userMsg });
  assert.equal(r.choices[0]?.message.content, '[gamma] tok1 tok2');
  assert.equal((await gamma.stats()).requests, 1);
  await gamma.kill();
});

// ---------- 16. CLI ----------

const SERVER_FLAGS: [string, string][] = [
  ['listen', 'LISTEN_ADDR'],
  ['worker-secret', 'WORKER_SECRET'],
  ['max-queue-len', 'MAX_QUEUE_LEN'],
  ['queue-timeout', 'QUEUE_TIMEOUT_SECS'],
  ['request-timeout', 'REQUEST_TIMEOUT_SECS'],
  ['max-body-bytes', 'MAX_BODY_BYTES'],
  ['max-frame-bytes', 'MAX_FRAME_BYTES'],
  ['heartbeat-interval', 'HEARTBEAT_INTERVAL_SECS'],
  ['heartbeat-timeout', 'HEARTBEAT_TIMEOUT_SECS'],
  ['max-requeues', 'MAX_REQUEUES'],
  ['drain-timeout', 'DRAIN_TIMEOUT_SECS'],
  ['trust-proxy', 'TRUST_PROXY'],
  ['log-level', 'LOG_LEVEL'],
];

const WORKER_FLAGS: [string, string][] = [
  ['proxy-url', 'PROXY_URL'],
  ['worker-secret', 'WORKER_SECRET'],
  ['backend-url', 'BACKEND_URL'],
  ['models', 'MODELS'],
  ['worker-name', 'WORKER_NAME'],
  ['max-concurrency', 'MAX_CONCURRENCY'],
  ['backend-api-key', 'BACKEND_API_KEY'],
  ['provider', 'PROVIDER'],
  ['models-refresh', 'MODELS_REFRESH_SECS'],
  ['heartbeat-timeout', 'HEARTBEAT_TIMEOUT_SECS'],
  ['drain-timeout', 'DRAIN_TIMEOUT_SECS'],
  ['max-frame-bytes', 'MAX_FRAME_BYTES'],
  ['log-level', 'LOG_LEVEL'],
];

async function runCli(script: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [`${ROOT}dist/cli/${script}`, ...args], {
      env: { PATH: process.env['PATH'] ?? '' },
      timeout: 10_000,
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: unknown; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('16a. --help of server and worker lists every flag with its env var', T, async () => {
  const cases = [['server.js', SERVER_FLAGS], ['worker.js', WORKER_FLAGS]] as const;
  const runs = await Promise.all(cases.map(([script]) => runCli(script, ['--help'])));
  for (const [i, [script, flags]] of cases.entries()) {
    const r = runs[i]!;
    assert.equal(r.code, 0, `${script} --help exits 0`);
    for (const [flag, env] of flags) {
      // the flag, then its env var on the same or the next line
      const re = new RegExp(`--${escape(flag)}(?![\\w-])[^\\n]*(?:\\n[^\\n]*)?\\b${env}\\b`);
      assert.match(r.stdout, re, `${script} --help documents --${flag} / ${env}`);
    }
    assert.match(r.stdout, /--help/);
  }
});

test('16b. a missing --worker-secret exits non-zero with one line naming the flag', T, async () => {
  const [s, w] = await Promise.all([
    runCli('server.js', ['--listen', '127.0.0.1:0']),
    runCli('worker.js', ['--proxy-url', server.url, '--backend-url', mockA.url, '--models', 'm-x']),
  ]);
  assert.notEqual(s.code, 0);
  assert.equal(s.stderr.trim().split('\n').length, 1, `one line: ${JSON.stringify(s.stderr)}`);
  assert.match(s.stderr, /--worker-secret/);

  assert.notEqual(w.code, 0);
  assert.equal(w.stderr.trim().split('\n').length, 1, `one line: ${JSON.stringify(w.stderr)}`);
  assert.match(w.stderr, /--worker-secret/);
  assert.equal((await health(server)).workers_connected, 3);
});
