// Unit tests of the simulated backend (src/mock-backend), in-process, over real HTTP on loopback.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { request } from 'undici';
import { parseMockArgs, startMockBackend, type MockBackend, type MockStats } from '../../src/mock-backend/index.js';
import { bodyDigest } from '../../src/mock-backend/content.js';

let mock: MockBackend;
before(async () => {
  mock = await startMockBackend({ name: 'alpha', models: ['m1', 'm2'] });
});
after(() => mock.close());

const chat = { model: 'm1', messages: [{ role: 'user', content: 'hello there world' }] };

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  return request(`${mock.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** The `data:` payloads of an SSE body, in order. */
function dataLines(text: string): string[] {
  return text
    .split('\n\n')
    .filter(Boolean)
    .map((ev) => ev.split('\n').find((l) => l.startsWith('data: '))?.slice(6) ?? '');
}

/** Polls stats until `cond` holds, failing after `ms`. */
async function waitFor(cond: (s: MockStats) => boolean, ms = 2000): Promise<MockStats> {
  const end = Date.now() + ms;
  for (;;) {
    const s = mock.stats();
    if (cond(s)) return s;
    if (Date.now() > end) assert.fail(`condition not met in ${ms} ms: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('mock backend', () => {
  test('non-streaming chat answers with content, usage and the backend name', async () => {
    mock.reset();
    const raw = JSON.stringify(chat);
    const res = await post('/v1/chat/completions', raw, { 'X-Mock-Tokens': '3' });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['x-mock-backend'], 'alpha');
    const body = (await res.body.json()) as any;
    assert.equal(body.object, 'chat.completion');
    assert.equal(body.model, 'm1');
    assert.equal(body.choices[0].message.content, '[alpha] tok1 tok2 tok3');
    assert.deepEqual(body.usage, { prompt_tokens: 3, completion_tokens: 3, total_tokens: 6 });
    const s = await waitFor((x) => x.completed === 1);
    assert.equal(s.requests, 1);
    assert.equal(s.lastRequest?.body, raw);
    assert.equal(s.lastRequest?.path, '/v1/chat/completions');
    assert.equal(s.byPath['/v1/chat/completions'], 1);
  });

  test('streaming chat: role first, one chunk per token, stop, usage only when asked, [DONE] last', async () => {
    for (const includeUsage of [false, true]) {
      const req = { ...chat, stream: true, ...(includeUsage ? { stream_options: { include_usage: true } } : {}) };
      const res = await post('/v1/chat/completions', req, { 'x-mock-tokens': '4' });
      assert.match(String(res.headers['content-type']), /^text\/event-stream/);
      const data = dataLines(await res.body.text());
      assert.equal(data.at(-1), '[DONE]');
      const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
      const tokens = chunks.filter((c) => c.choices[0]?.delta?.content);
      assert.equal(tokens.length, 4);
      assert.equal(tokens[0].choices[0].delta.role, 'assistant');
      assert.equal(tokens.map((c) => c.choices[0].delta.content).join(''), '[alpha] tok1 tok2 tok3 tok4');
      const stop = chunks.findIndex((c) => c.choices[0]?.finish_reason === 'stop');
      assert.equal(stop, 4);
      const usage = chunks.filter((c) => c.usage);
      if (includeUsage) {
        assert.equal(usage.length, 1);
        assert.equal(chunks.at(-1), usage[0]);
        assert.deepEqual(usage[0].choices, []);
        assert.equal(usage[0].usage.completion_tokens, 4);
      } else {
        assert.equal(usage.length, 0);
      }
    }
  });

  test('anthropic stream follows the real event sequence', async () => {
    const res = await post('/v1/messages', { ...chat, max_tokens: 10, stream: true }, { 'x-mock-tokens': '2' });
    const text = await res.body.text();
    const events = text.split('\n\n').filter(Boolean).map((e) => e.split('\n')[0]);
    assert.deepEqual(events, [
      'event: message_start',
      'event: content_block_start',
      'event: content_block_delta',
      'event: content_block_delta',
      'event: content_block_stop',
      'event: message_delta',
      'event: message_stop',
    ]);
    const data = dataLines(text).map((d) => JSON.parse(d));
    assert.equal(data[0].message.usage.input_tokens, 3);
    assert.equal(data[5].delta.stop_reason, 'end_turn');
    assert.equal(data[5].usage.output_tokens, 2);
  });

  test('the official Anthropic SDK can create and stream', async () => {
    const client = new Anthropic({ apiKey: 'x', baseURL: mock.url, maxRetries: 0 });
    const msg = await client.messages.create({ model: 'm1', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
    assert.deepEqual(msg.content, [{ type: 'text', text: '[alpha] tok1 tok2 tok3 tok4 tok5 tok6 tok7 tok8' }]);
    const stream = client.messages.stream({ model: 'm1', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
    let deltas = '';
    stream.on('text', (t) => (deltas += t));
    const final = await stream.finalMessage();
    assert.equal(deltas, '[alpha] tok1 tok2 tok3 tok4 tok5 tok6 tok7 tok8');
    assert.equal(final.usage.output_tokens, 8);
    assert.equal(final.stop_reason, 'end_turn');
  });

  test('x-mock-status fails with the OpenAI or the Anthropic error shape', async () => {
    const a = await post('/v1/chat/completions', chat, { 'x-mock-status': '429' });
    assert.equal(a.statusCode, 429);
    const ab = (await a.body.json()) as any;
    assert.equal(typeof ab.error.message, 'string');
    assert.equal(ab.error.type, 'rate_limit_error');
    assert.ok('code' in ab.error);
    const b = await post('/v1/messages', chat, { 'x-mock-status': '500' });
    assert.equal(b.statusCode, 500);
    const bb = (await b.body.json()) as any;
    assert.equal(bb.type, 'error');
    assert.equal(bb.error.type, 'api_error');
    const bad = await post('/v1/chat/completions', '{nope');
    assert.equal(bad.statusCode, 400);
    assert.equal(((await bad.body.json()) as any).error.type, 'invalid_request_error');
    const missing = await request(`${mock.url}/v1/nothing`);
    assert.equal(missing.statusCode, 404);
    await missing.body.dump();
  });

  test('a client leaving mid-stream is counted aborted and stops the token clock', async () => {
    mock.reset();
    const res = await post('/v1/chat/completions', { ...chat, stream: true }, { 'x-mock-tokens': '1000', 'x-mock-delay-ms': '20' });
    await res.body[Symbol.asyncIterator]().next(); // the first token arrived
    assert.equal(mock.stats().active, 1);
    res.body.destroy();
    const s = await waitFor((x) => x.aborted === 1 && x.active === 0);
    assert.equal(s.completed, 0);
  });

  test('x-mock-hang waits until the client leaves; x-mock-reset drops the connection', async () => {
    mock.reset();
    const ac = new AbortController();
    const hung = request(`${mock.url}/v1/chat/completions`, {
      method: 'POST',
      body: JSON.stringify(chat),
      headers: { 'x-mock-hang': '1' },
      signal: ac.signal,
    });
    await waitFor((x) => x.active === 1);
    ac.abort();
    await assert.rejects(hung);
    await waitFor((x) => x.aborted === 1 && x.active === 0);

    await assert.rejects(post('/v1/chat/completions', chat, { 'x-mock-reset': '1' }));
    const res = await post('/v1/chat/completions', { ...chat, stream: true }, { 'x-mock-reset-after': '2' });
    await assert.rejects(res.body.text());
    const s = await waitFor((x) => x.resets === 2 && x.active === 0);
    assert.equal(s.aborted, 1);
  });

  test('a call stops counting as active when its client is seen leaving, not when the connection is torn down', async () => {
    mock.reset();
    // A stream the client stops reading, so the mock's writes back up and the teardown can't finish.
    const body = JSON.stringify({ ...chat, stream: true });
    const socket = connect(mock.port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: m\r\ncontent-type: application/json\r\nx-mock-chunk-bytes: 1048576\r\nx-mock-tokens: 64\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    await waitFor((x) => x.active === 1);
    socket.pause();
    socket.end(); // the client is gone (FIN); its unread data keeps the connection from closing
    try {
      const s = await waitFor((x) => x.active === 0 && x.aborted === 1);
      assert.equal(s.maxActive, 1);
    } finally {
      socket.destroy();
    }
  });

  test("a client that resets a call and sends its next one at once never shows as two calls at the backend", async () => {
    // Found by the chaos soak: a worker aborts a call (RST: it leaves unread data behind) and the
    // server's next request for that slot reaches the backend on another connection right after.
    const chatHead = (body: string, extra: string): string => `POST /v1/chat/completions HTTP/1.1\r\nhost: m\r\ncontent-type: application/json\r\n${extra}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    for (let i = 0; i < 5; i++) {
      const next = connect(mock.port, '127.0.0.1');
      await once(next, 'connect');
      const first = connect(mock.port, '127.0.0.1');
      await once(first, 'connect');
      const body = JSON.stringify({ ...chat, stream: true });
      first.write(chatHead(body, 'x-mock-chunk-bytes: 65536\r\nx-mock-tokens: 1000\r\n'));
      await once(first, 'data');
      await waitFor((x) => x.active === 1);
      mock.reset();
      let answered = '';
      next.on('data', (d) => (answered += d.toString()));
      // In one tick: reset the first call, send the next.
      first.destroy();
      next.write(chatHead(JSON.stringify(chat), 'connection: close\r\n'));
      await once(next, 'close');
      assert.match(answered, /^HTTP\/1\.1 200 /);
      const s = await waitFor((x) => x.active === 0);
      assert.equal(s.maxActive, 1, `round ${i}: the reset call and the next one overlapped at the backend`);
    }
  });

  test('x-mock-split-utf8 cuts a character across writes yet decodes whole', async () => {
    for (const stream of [true, false]) {
      const res = await post('/v1/chat/completions', { ...chat, stream }, { 'x-mock-split-utf8': '1', 'x-mock-tokens': '2' });
      const parts: Buffer[] = [];
      for await (const c of res.body) parts.push(c as Buffer);
      // some chunk must end inside a multi-byte sequence: decoding it alone leaves a replacement char
      assert.ok(parts.some((p) => p.toString('utf8').includes('\uFFFD')), 'no chunk ended mid-character');
      const text = Buffer.concat(parts).toString('utf8');
      assert.ok(!text.includes('\uFFFD'));
      const content = stream
        ? dataLines(text)
            .filter((d) => d !== '[DONE]')
            .map((d) => JSON.parse(d).choices[0]?.delta?.content ?? '')
            .join('')
        : JSON.parse(text).choices[0].message.content;
      assert.equal(content, '[alpha] tok1 tok2 é😀');
    }
  });

  test('x-mock-digest puts a digest of the exact request body in the first token, streaming or not', async () => {
    const body = JSON.stringify({ ...chat, nonce: 'unique-42' });
    const digest = bodyDigest(body);
    assert.match(digest, /^[0-9a-f]{16}$/);
    assert.notEqual(digest, bodyDigest(JSON.stringify({ ...chat, nonce: 'unique-43' })));
    const whole = (await (await post('/v1/chat/completions', body, { 'x-mock-digest': '1', 'x-mock-tokens': '2' })).body.json()) as any;
    assert.equal(whole.choices[0].message.content, `[alpha] #${digest} tok1 tok2`);
    const streamBody = JSON.stringify({ ...chat, stream: true, nonce: 'unique-42' });
    const text = await (await post('/v1/chat/completions', streamBody, { 'x-mock-digest': '1', 'x-mock-tokens': '2' })).body.text();
    const content = dataLines(text)
      .filter((d) => d !== '[DONE]')
      .map((d) => JSON.parse(d).choices[0]?.delta?.content ?? '')
      .join('');
    assert.equal(content, `[alpha] #${bodyDigest(streamBody)} tok1 tok2`);
  });

  test('x-mock-chunk-bytes pads each token event to about N bytes', async () => {
    const res = await post('/v1/chat/completions', { ...chat, stream: true }, { 'x-mock-chunk-bytes': '65536', 'x-mock-tokens': '3' });
    const data = dataLines(await res.body.text());
    assert.equal(data.length, 5);
    for (const d of data.slice(0, 3)) assert.ok(Math.abs(d.length - 65536) < 1024, `event of ${d.length} bytes`);
  });

  test('embeddings, responses, completions and model listing have the OpenAI shapes', async () => {
    const e = (await (await post('/v1/embeddings', { model: 'm2', input: ['a b', 'c'] })).body.json()) as any;
    assert.equal(e.object, 'list');
    assert.equal(e.model, 'm2');
    assert.equal(e.data.length, 2);
    assert.deepEqual(e.data.map((d: any) => [d.object, d.index, d.embedding.length]), [['embedding', 0, 8], ['embedding', 1, 8]]);
    assert.deepEqual(e.usage, { prompt_tokens: 3, total_tokens: 3 });
    const again = (await (await post('/v1/embeddings', { input: 'a b' })).body.json()) as any;
    assert.deepEqual(again.data[0].embedding, e.data[0].embedding);

    const r = (await (await post('/v1/responses', { model: 'm1', input: 'x y' }, { 'x-mock-tokens': '2' })).body.json()) as any;
    assert.equal(r.object, 'response');
    assert.equal(r.output[0].content[0].text, '[alpha] tok1 tok2');
    assert.deepEqual(r.usage, { input_tokens: 2, output_tokens: 2, total_tokens: 4 });
    const rs = await (await post('/v1/responses', { model: 'm1', input: 'x', stream: true })).body.text();
    const last = JSON.parse(dataLines(rs).at(-1) as string);
    assert.equal(last.type, 'response.completed');
    assert.equal(last.response.usage.output_tokens, 8);

    const c = (await (await post('/v1/completions', { model: 'm1', prompt: 'p' }, { 'x-mock-tokens': '1' })).body.json()) as any;
    assert.equal(c.object, 'text_completion');
    assert.equal(c.choices[0].text, '[alpha] tok1');

    const m = (await (await request(`${mock.url}/v1/models`)).body.json()) as any;
    assert.deepEqual(m.data.map((x: any) => [x.id, x.owned_by]), [['m1', 'alpha'], ['m2', 'alpha']]);
    const tags = await request(`${mock.url}/api/tags`);
    assert.equal(tags.statusCode, 404); // ollama: false
    await tags.body.dump();
  });

  test('HTTP stats and reset mirror the in-process view', async () => {
    await (await post('/v1/chat/completions', chat)).body.dump();
    const s = (await (await request(`${mock.url}/_mock/stats`)).body.json()) as MockStats;
    assert.ok(s.requests >= 1);
    await (await request(`${mock.url}/_mock/reset`, { method: 'POST' })).body.dump();
    assert.equal(mock.stats().requests, 0);
    assert.equal(mock.stats().lastRequest, null);
  });
});

describe('mock backend CLI flags', () => {
  test('flags win over env vars, env vars over defaults', () => {
    const d = parseMockArgs([], {});
    assert.equal(d.help, false);
    if (d.help) return;
    assert.deepEqual([d.options.host, d.options.port, d.options.tokens, d.options.models], ['127.0.0.1', 8000, 8, ['mock-model']]);
    const p = parseMockArgs(['--listen', '0.0.0.0:0', '--models', 'a, b', '--ollama'], { MOCK_TOKENS: '3', MOCK_LISTEN: ':9' });
    if (p.help) return assert.fail();
    assert.deepEqual([p.options.host, p.options.port, p.options.tokens, p.options.models, p.options.ollama], ['0.0.0.0', 0, 3, ['a', 'b'], true]);
    const o = parseMockArgs(['--ollama-only'], {});
    if (o.help) return assert.fail();
    assert.deepEqual([o.options.ollama, o.options.ollamaOnly], [false, true]);
    assert.throws(() => parseMockArgs(['--tokens', 'x']), /--tokens/);
    assert.equal(parseMockArgs(['--help']).help, true);
  });
});
