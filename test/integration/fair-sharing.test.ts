// Sharing scarce GPUs (issue 13): tenants take turns in the queue, a client can lower its own
// priority, and a queued stream is kept alive with SSE comments that the SDKs ignore.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { killAll, startMock, startServer, startWorker, until } from '../helpers/cluster.js';
import { MODEL, chatBody, post, sseData } from './faults-util.js';

after(killAll);

/** Holds the worker's only slot until the returned promise's request finishes. */
function blocker(url: string, ms: number): Promise<Response> {
  return post(url, '/v1/chat/completions', chatBody(), { 'x-mock-first-delay-ms': String(ms) });
}

describe('fair queueing', () => {
  test("a flood from one client doesn't hold back another client's few requests beyond a few turns", async () => {
    const [server, mock] = await Promise.all([startServer(['--trust-proxy']), startMock()]);
    await startWorker({ server, backend: mock.url, name: 'one', maxConcurrency: 1 });
    const order: string[] = [];
    const send = (who: string, i: number): Promise<void> =>
      post(server, '/v1/chat/completions', chatBody(), { 'x-forwarded-for': who === 'flood' ? '10.0.0.1' : '10.0.0.2', 'x-mock-first-delay-ms': '30' }).then(async (r) => {
        assert.equal(r.status, 200);
        await r.arrayBuffer();
        order.push(`${who}${i}`);
      });
    const depth = async (): Promise<number> => ((await (await fetch(`${server.url}/health`)).json()) as { queue_depth: number }).queue_depth;
    // The only slot is held (until we let go), so the arrival order is all in the queue.
    const holder = new AbortController();
    const hold = post(server, '/v1/chat/completions', chatBody(), { 'x-mock-hang': '1' }, holder.signal).catch(() => undefined);
    await until(async () => (await mock.stats()).active === 1, 'the slot held');
    const flood = Array.from({ length: 30 }, (_, i) => send('flood', i));
    await until(async () => (await depth()) === 30, 'the flood queued');
    const few = Array.from({ length: 3 }, (_, i) => send('few', i));
    await until(async () => (await depth()) === 33, 'the few queued behind it');
    holder.abort();
    await Promise.all([hold, ...flood, ...few]);
    const lastFew = Math.max(...['few0', 'few1', 'few2'].map((x) => order.indexOf(x)));
    assert.ok(lastFew <= 6, `the three were served within a few turns, not after the flood: ${order.join(' ')}`);
  });

  test('X-Relay-Priority: low waits behind normal requests; it can only lower', async () => {
    const [server, mock] = await Promise.all([startServer(['--trust-proxy', '--priority-aging', '0']), startMock()]);
    await startWorker({ server, backend: mock.url, name: 'one', maxConcurrency: 1 });
    const hold = blocker(server.url, 800);
    await until(async () => (await mock.stats()).active === 1, 'the slot taken');
    const order: string[] = [];
    const send = (name: string, headers: Record<string, string>): Promise<void> =>
      post(server, '/v1/chat/completions', chatBody(), headers).then(async (r) => {
        assert.equal(r.status, 200);
        await r.arrayBuffer();
        order.push(name);
      });
    const low = send('low', { 'x-relay-priority': 'low', 'x-forwarded-for': '10.0.0.1' });
    await until(async () => ((await (await fetch(`${server.url}/health`)).json()) as { queue_depth: number }).queue_depth === 1, 'low queued');
    const high = send('claims-high', { 'x-relay-priority': 'high', 'x-forwarded-for': '10.0.0.2' }); // treated as normal
    const normal = send('normal', { 'x-forwarded-for': '10.0.0.3' });
    await Promise.all([hold, low, high, normal]);
    assert.deepEqual(order, ['claims-high', 'normal', 'low']);
    assert.equal((await mock.stats()).lastRequest!.headers['x-relay-priority'], undefined, 'the header stays at the relay');
  });
});

describe('streams kept alive while queued (--queue-keepalive)', () => {
  test('a queued stream gets its headers, keep-alive comments and its position, then the answer, through both SDKs', async () => {
    const [server, mock] = await Promise.all([startServer(['--queue-keepalive', '1']), startMock(['--tokens', '3'])]);
    await startWorker({ server, backend: mock.url, name: 'one', maxConcurrency: 1 });

    // Raw view: the comments and the header.
    const hold = blocker(server.url, 3500);
    await until(async () => (await mock.stats()).active === 1, 'the slot taken');
    const raw = await post(server, '/v1/chat/completions', chatBody({ stream: true }));
    assert.equal(raw.status, 200);
    assert.equal(raw.headers.get('x-relay-queue-position'), '1');
    const text = await raw.text();
    assert.match(text, /^: queued, position 1\n\n/);
    assert.ok((text.match(/^: queued/gm) ?? []).length >= 2, `several keep-alive comments: ${text.slice(0, 200)}`);
    assert.equal(sseData(text).at(-1), '[DONE]');
    await hold;

    const openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'x', maxRetries: 0 });
    const anthropic = new Anthropic({ baseURL: server.url, apiKey: 'x', maxRetries: 0 });
    const hold2 = blocker(server.url, 1600);
    await until(async () => (await mock.stats()).active === 1, 'the slot taken again');
    let content = '';
    const stream = await openai.chat.completions.create({ model: MODEL, stream: true, messages: [{ role: 'user', content: 'hi' }] });
    for await (const c of stream) content += c.choices[0]?.delta?.content ?? '';
    assert.equal(content, '[mock] tok1 tok2 tok3');
    await hold2;

    const hold3 = blocker(server.url, 1600);
    await until(async () => (await mock.stats()).active === 1, 'the slot taken a third time');
    let text3 = '';
    const astream = anthropic.messages.stream({ model: MODEL, max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });
    astream.on('text', (t) => (text3 += t));
    await astream.finalMessage();
    assert.equal(text3, '[mock] tok1 tok2 tok3');
    await hold3;
  });

  test('a queued stream that times out after its headers went out ends with an SSE error event', async () => {
    const [server, mock] = await Promise.all([startServer(['--queue-keepalive', '1', '--queue-timeout', '2']), startMock()]);
    await startWorker({ server, backend: mock.url, name: 'one', maxConcurrency: 1 });
    const hold = blocker(server.url, 4000);
    await until(async () => (await mock.stats()).active === 1, 'the slot taken');
    const [openai, anthropic] = await Promise.all([
      post(server, '/v1/chat/completions', chatBody({ stream: true })),
      post(server, '/v1/messages', JSON.stringify({ model: MODEL, max_tokens: 8, stream: true, messages: [{ role: 'user', content: 'hi' }] })),
    ]);
    assert.equal(openai.status, 200);
    const o = await openai.text();
    assert.match(o, /^: queued/);
    assert.equal(JSON.parse(sseData(o).at(-1)!).error.code, 'queue_timeout');
    const a = await anthropic.text();
    assert.match(a.split('\n\n').filter((e) => e.trim()).at(-1)!, /^event: error\ndata: \{"type":"error","error":\{"type":"overloaded_error"/);
    await hold;
  });
});
