// The backend misbehaving under a healthy worker: connections reset before or during the answer,
// and a stream that goes silent past the request timeout.
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { killAll, startMock, startServer, startWorker, until } from '../helpers/cluster.js';
import { chat, chatBody, messagesBody, openStream, prefixes, sseData } from './faults-util.js';

afterEach(() => killAll());

describe('backend faults', () => {
  test('backend resets the connection: 502 before the answer, an SSE error event mid-stream (OpenAI and Anthropic)', async () => {
    const [mock, server] = await Promise.all([startMock(['--name', 'A']), startServer()]);
    await startWorker({ server, backend: mock.url, name: 'wA' });

    const before = await chat(server, { 'x-mock-reset': '1' });
    assert.equal(before.status, 502);
    assert.equal(before.body.error.type, 'server_error');
    assert.equal(typeof before.body.error.message, 'string');

    const openai = await openStream(server, '/v1/chat/completions', chatBody({ stream: true }), { 'x-mock-tokens': '10', 'x-mock-reset-after': '3' });
    const o = await openai.rest();
    const oData = sseData(o);
    assert.equal(JSON.parse(oData.at(-1)!).error.code, 'backend_error', o.slice(-300));
    assert.equal(oData.length, 4, 'three tokens, then the error event');
    assert.ok(!o.includes('[DONE]'));

    const anthropic = await openStream(server, '/v1/messages', JSON.stringify({ ...JSON.parse(messagesBody()), stream: true }), { 'x-mock-tokens': '10', 'x-mock-reset-after': '3' });
    const a = await anthropic.rest();
    assert.match(a.split('\n\n').filter((e) => e.trim()).at(-1)!, /^event: error\ndata: \{"type":"error"/);
    assert.ok(!a.includes('message_stop'));
    assert.deepEqual(prefixes(a), ['A']);

    // The worker survived all of it.
    const ok = await chat(server);
    assert.equal(ok.status, 200);
    assert.equal(server.count('closing worker connection'), 0);
  });

  test('a connection the backend drops before answering is retried once on a fresh one; the client sees one answer', async () => {
    const [mock, server] = await Promise.all([startMock(['--name', 'A']), startServer()]);
    await startWorker({ server, backend: mock.url, name: 'wA' });
    const res = await chat(server, { 'x-mock-reset-once': 'k1' });
    assert.equal(res.status, 200);
    const stats = await mock.stats();
    assert.equal(stats.resets, 1, 'the first attempt was dropped');
    assert.equal(stats.completed, 1, 'the retry answered');
  });

  test('a stream that goes silent past --request-timeout ends with an SSE timeout event; the backend call is aborted', async () => {
    const [mock, server] = await Promise.all([startMock(['--name', 'A']), startServer(['--request-timeout', '0.5'])]);
    await startWorker({ server, backend: mock.url, name: 'wA' });
    const stream = await openStream(server, '/v1/chat/completions', chatBody({ stream: true }), {
      'x-mock-tokens': '3',
      'x-mock-first-delay-ms': '0',
      'x-mock-delay-ms': '3000',
    });
    const text = await stream.rest();
    const data = sseData(text);
    assert.equal(data.length, 2, 'one token, then the error event');
    const err = JSON.parse(data[1]!).error;
    assert.equal(err.code, 'request_timeout');
    assert.equal(err.type, 'timeout_error');
    await until(async () => (await mock.stats()).aborted === 1, 'backend call aborted');
  });
});
