// The server going away (killed and restarted, or SIGTERM with work in flight), and model discovery.
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { health, killAll, startMock, startServer, startWorker, until } from '../helpers/cluster.js';
import { chat, chatBody, chatStreamContent, openStream, post, sseData } from './faults-util.js';

afterEach(() => killAll());

describe('server faults', () => {
  test('server killed and restarted on the same port: the worker reconnects by itself', async () => {
    const [mock, first] = await Promise.all([startMock(['--name', 'A']), startServer()]);
    const worker = await startWorker({ server: first, backend: mock.url, name: 'wA' });
    assert.equal((await chat(first)).status, 200);

    const port = new URL(first.url).port;
    await first.kill();
    await worker.waitMsg('disconnected from server');
    await worker.waitMsg('reconnecting');

    const second = await startServer(['--listen', `127.0.0.1:${port}`]);
    assert.equal(second.url, first.url);
    await second.waitMsg('worker registered', { worker: 'wA' });
    await until(() => worker.count('registered') === 2, 'worker registered a second time');

    const r = await chat(second);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.match(r.content ?? '', /^\[A\] tok1/);
    assert.equal((await health(second)).workers_connected, 1);
    assert.equal(worker.child.exitCode, null, 'the worker process kept running');
  });

  test('server SIGTERM: new requests get 503, the in-flight stream completes, exit code 0', async () => {
    const [mock, server] = await Promise.all([startMock(['--name', 'A']), startServer(['--drain-timeout', '10'])]);
    await startWorker({ server, backend: mock.url, name: 'wA' });
    const stream = await openStream(server, '/v1/chat/completions', chatBody({ stream: true }), { 'x-mock-tokens': '20', 'x-mock-delay-ms': '100' });
    assert.ok(await stream.until((t) => t.includes('[A] tok1')));

    server.signal('SIGTERM');
    await server.waitMsg('shutting down: draining in-flight requests');
    const refused = await chat(server);
    assert.equal(refused.status, 503);
    assert.equal(refused.body.error.code, 'shutting_down');
    assert.ok(refused.headers.get('retry-after'));
    const anthropic = await post(server, '/v1/messages', JSON.stringify({ model: 'mock-model', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }));
    assert.equal(anthropic.status, 503);
    assert.equal(((await anthropic.json()) as { type: string }).type, 'error');
    const h = await fetch(`${server.url}/health`);
    assert.equal(h.status, 503);
    assert.equal((await mock.stats()).active, 1, 'the stream was still in flight when new requests were refused');

    const text = await stream.rest();
    assert.equal(sseData(text).at(-1), '[DONE]');
    assert.ok(!text.includes('"error"'));
    assert.equal(chatStreamContent(text), ['[A] tok1', ...Array.from({ length: 19 }, (_, i) => ` tok${i + 2}`)].join(''));

    const exit = await server.exited;
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.equal(server.count('shutdown complete'), 1);
    assert.equal((await mock.stats()).requests, 1, 'the refused requests never reached the backend');
  });

  test('--models auto: the worker registers the backend model list and /v1/models lists it', async () => {
    const [mock, server] = await Promise.all([startMock(['--name', 'A', '--models', 'alpha-model,beta-model']), startServer()]);
    const worker = await startWorker({ server, backend: mock.url, name: 'wA', models: 'auto' });
    const registered = await worker.waitMsg('registered');
    assert.deepEqual(registered['models'], ['alpha-model', 'beta-model']);
    const serverSide = await server.waitMsg('worker registered', { worker: 'wA' });
    assert.deepEqual(serverSide['models'], ['alpha-model', 'beta-model']);

    const list = (await (await fetch(`${server.url}/v1/models`)).json()) as { object: string; data: { id: string; object: string }[] };
    assert.equal(list.object, 'list');
    assert.deepEqual(list.data.map((m) => m.id).sort(), ['alpha-model', 'beta-model']);
    assert.ok(list.data.every((m) => m.object === 'model'));
    assert.equal((await mock.stats()).byPath['/v1/models'], 1);

    const r = await post(server, '/v1/chat/completions', JSON.stringify({ model: 'beta-model', messages: [{ role: 'user', content: 'hi' }] }));
    assert.equal(r.status, 200);
    const body = (await r.json()) as { model: string; choices: { message: { content: string } }[] };
    assert.equal(body.model, 'beta-model');
    assert.match(body.choices[0]!.message.content, /^\[A\] tok1/);
    const unknown = await post(server, '/v1/chat/completions', JSON.stringify({ model: 'mock-model', messages: [{ role: 'user', content: 'hi' }] }));
    assert.equal(unknown.status, 404, 'a model the backend does not list is not routed');
  });
});
