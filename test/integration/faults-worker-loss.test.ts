// Workers that die or freeze while holding requests: a request that hasn't sent a byte moves to
// another worker; one that has started streaming ends with an SSE error event, never spliced.
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { killAll, startMock, startServer, startWorker, until } from '../helpers/cluster.js';
import { chat, chatBody, chatStreamContent, messagesBody, openStream, prefixes, sseData } from './faults-util.js';

afterEach(() => killAll());

describe('worker loss', () => {
  test('SIGKILL of a worker holding not-yet-started requests: they complete on the other worker', async () => {
    // A's backend sits 10 s before its first token; B's answers at once.
    const [mockA, mockB, server] = await Promise.all([startMock(['--name', 'A', '--token-delay-ms', '10000']), startMock(['--name', 'B']), startServer()]);
    const workerA = await startWorker({ server, backend: mockA.url, name: 'wA', maxConcurrency: 2 });

    const whole = chat(server);
    const streamed = openStream(server, '/v1/chat/completions', chatBody({ stream: true }));
    await until(async () => (await mockA.stats()).active === 2, 'both requests reached backend A');
    await startWorker({ server, backend: mockB.url, name: 'wB' });
    await server.waitMsg('worker registered', { worker: 'wB' });

    workerA.signal('SIGKILL');
    const r = await whole;
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.match(r.content ?? '', /^\[B\] tok1/);
    const text = await (await streamed).rest();
    assert.deepEqual(prefixes(text), ['B']);
    assert.equal(sseData(text).at(-1), '[DONE]');
    assert.ok(!text.includes('"error"'));

    await server.waitMsg('worker disconnected', { worker: 'wA' });
    await until(() => server.count('request finished') === 2, 'both requests logged as finished');
    const finished = server.lines.filter((l) => l.msg === 'request finished');
    assert.ok(finished.every((l) => l['worker'] === 'wB' && l['status'] === 200), JSON.stringify(finished));
    await until(async () => (await mockA.stats()).aborted === 2, "backend A saw its dead worker's calls close");
  });

  test('SIGKILL after streaming began: an SSE error event ends the stream, nothing spliced (OpenAI and Anthropic)', async () => {
    const [mockA, mockB, server] = await Promise.all([startMock(['--name', 'A']), startMock(['--name', 'B']), startServer()]);
    const workerA = await startWorker({ server, backend: mockA.url, name: 'wA', maxConcurrency: 2 });
    const slow = { 'x-mock-tokens': '100', 'x-mock-delay-ms': '100' };

    const openai = await openStream(server, '/v1/chat/completions', chatBody({ stream: true }), slow);
    const anthropic = await openStream(server, '/v1/messages', JSON.stringify({ ...JSON.parse(messagesBody()), stream: true }), slow);
    assert.ok(await openai.until((t) => t.includes('[A] tok1')));
    assert.ok(await anthropic.until((t) => t.includes('[A] tok1')));
    // An idle worker for the same model: a relay that wrongly retried a started stream would use it.
    await startWorker({ server, backend: mockB.url, name: 'wB' });
    await server.waitMsg('worker registered', { worker: 'wB' });

    workerA.signal('SIGKILL');
    const [o, a] = await Promise.all([openai.rest(), anthropic.rest()]);

    const oData = sseData(o);
    const last = JSON.parse(oData.at(-1)!);
    assert.equal(typeof last.error?.message, 'string', `last OpenAI event is an error: ${oData.at(-1)}`);
    assert.equal(last.error.code, 'worker_lost');
    assert.ok(!o.includes('[DONE]'));
    assert.deepEqual(prefixes(o), ['A'], 'only backend A spoke');
    assert.match(chatStreamContent(o.slice(0, o.lastIndexOf('data: {"error"'))), /^\[A\] tok1( tok\d+)*$/);

    const events = a.split('\n\n').filter((e) => e.trim());
    const lastEvent = events.at(-1)!;
    assert.match(lastEvent, /^event: error\ndata: /, `last Anthropic event is an error: ${lastEvent}`);
    const body = JSON.parse(lastEvent.split('\n')[1]!.slice(6));
    assert.equal(body.type, 'error');
    assert.equal(body.error.type, 'api_error');
    assert.ok(!a.includes('message_stop'));
    assert.deepEqual(prefixes(a), ['A']);

    assert.equal((await mockB.stats()).requests, 0, 'nothing was retried on B');
    await until(() => server.count('request finished') === 2, 'both requests logged as finished');
    const finished = server.lines.filter((l) => l.msg === 'request finished');
    assert.ok(finished.every((l) => l['error'] === 'worker_lost'), JSON.stringify(finished));

    // B is healthy and serves the next request.
    const next = await chat(server);
    assert.match(next.content ?? '', /^\[B\] /);
  });
});
