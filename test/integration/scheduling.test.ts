// Scheduling end to end: capacity limits, queueing, 429/503/404, least-loaded sharing and instant
// dispatch, with a real server, real workers and simulated backends.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, describe, test } from 'node:test';
import { WebSocketServer } from 'ws';
import { health, killAll, startMock, startServer, startWorker, until } from '../helpers/cluster.js';
import { parseFrame } from './faults-util.js';

after(killAll);

async function chat(url: string, model: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string; headers: Headers }> {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
  });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

describe('capacity and queueing', () => {
  test('requests beyond capacity wait, all complete, and the backend never sees more than --max-concurrency', async () => {
    const mock = await startMock(['--name', 'cap']);
    const server = await startServer(['--max-queue-len', '0']);
    await startWorker({ server, backend: mock.url, name: 'cap-w', maxConcurrency: 2 });
    const results = await Promise.all(Array.from({ length: 8 }, () => chat(server.url, 'mock-model', { 'x-mock-first-delay-ms': '100' })));
    assert.deepEqual(results.map((r) => r.status), Array(8).fill(200));
    const stats = await mock.stats();
    assert.equal(stats.requests, 8);
    assert.equal(stats.maxActive, 2, 'backend saw more concurrent calls than the worker allows');
  });

  test('two equal workers share four slow requests two and two', async () => {
    const a = await startMock(['--name', 'share-a']);
    const b = await startMock(['--name', 'share-b']);
    const server = await startServer();
    await startWorker({ server, backend: a.url, name: 'share-wa', maxConcurrency: 4 });
    await startWorker({ server, backend: b.url, name: 'share-wb', maxConcurrency: 4 });
    const results = await Promise.all(Array.from({ length: 4 }, () => chat(server.url, 'mock-model', { 'x-mock-first-delay-ms': '200' })));
    const fromA = results.filter((r) => r.text.includes('[share-a]')).length;
    const fromB = results.filter((r) => r.text.includes('[share-b]')).length;
    assert.deepEqual([fromA, fromB], [2, 2]);
    assert.equal((await a.stats()).maxActive, 2);
    assert.equal((await b.stats()).maxActive, 2);
  });

  test('the third request against a busy worker and a full one-slot queue gets 429 with Retry-After', async () => {
    const mock = await startMock(['--name', 'full']);
    const server = await startServer(['--max-queue-len', '1']);
    await startWorker({ server, backend: mock.url, name: 'full-w', maxConcurrency: 1 });
    const first = chat(server.url, 'mock-model', { 'x-mock-first-delay-ms': '600' });
    await until(async () => (await mock.stats()).active === 1, 'first request on the backend');
    const second = chat(server.url, 'mock-model');
    await until(async () => (await health(server)).queue_depth === 1, 'second request queued');
    const third = await chat(server.url, 'mock-model');
    assert.equal(third.status, 429);
    assert.ok(third.headers.get('retry-after'));
    assert.equal((JSON.parse(third.text) as { error: { code: string } }).error.code, 'queue_full');
    assert.equal((await first).status, 200);
    assert.equal((await second).status, 200);
  });

  test('a queue timeout answers 503 near the limit and the request never reaches a backend', async () => {
    const mock = await startMock(['--name', 'qt']);
    const server = await startServer(['--queue-timeout', '1']);
    await startWorker({ server, backend: mock.url, name: 'qt-w', maxConcurrency: 1 });
    const busy = chat(server.url, 'mock-model', { 'x-mock-first-delay-ms': '2500' });
    await until(async () => (await mock.stats()).active === 1, 'busy request on the backend');
    const started = Date.now();
    const waited = await chat(server.url, 'mock-model');
    const elapsed = Date.now() - started;
    assert.equal(waited.status, 503);
    assert.ok(waited.headers.get('retry-after'));
    assert.equal((JSON.parse(waited.text) as { error: { code: string } }).error.code, 'queue_timeout');
    // "Within about a second of the limit": generous bounds, this only guards against never/instantly.
    assert.ok(elapsed >= 900 && elapsed < 2400, `503 after ${elapsed} ms for a 1 s queue timeout`);
    assert.equal((await busy).status, 200);
    assert.equal((await mock.stats()).requests, 1, 'the timed-out request reached the backend');
  });

  test('a worker that joins while a request waits gets it at once', async () => {
    const mock = await startMock(['--name', 'late']);
    const busyMock = await startMock(['--name', 'early']);
    const server = await startServer(['--queue-timeout', '60']);
    await startWorker({ server, backend: busyMock.url, name: 'early-w', maxConcurrency: 1 });
    const busy = chat(server.url, 'mock-model', { 'x-mock-first-delay-ms': '20000' });
    await until(async () => (await busyMock.stats()).active === 1, 'busy request on the first backend');
    const waiting = chat(server.url, 'mock-model');
    await until(async () => (await health(server)).queue_depth === 1, 'request queued');
    await startWorker({ server, backend: mock.url, name: 'late-w', maxConcurrency: 1 });
    const res = await waiting;
    assert.equal(res.status, 200);
    assert.match(res.text, /\[late\]/);
    void busy.catch(() => {});
  });

  test('an unknown model gets 404 at once naming the model and the available ones', async () => {
    const mock = await startMock(['--name', 'nf']);
    const server = await startServer();
    await startWorker({ server, backend: mock.url, name: 'nf-w', models: 'known-model' });
    const res = await chat(server.url, 'no-such-model');
    assert.equal(res.status, 404);
    const err = (JSON.parse(res.text) as { error: { code: string; message: string } }).error;
    assert.equal(err.code, 'model_not_found');
    assert.match(err.message, /no-such-model/);
    assert.match(err.message, /known-model/);
    assert.equal((await mock.stats()).requests, 0);
  });

  test('a request for a busy model does not block a request for another model', async () => {
    const slow = await startMock(['--name', 'hol-slow']);
    const fast = await startMock(['--name', 'hol-fast']);
    const server = await startServer();
    await startWorker({ server, backend: slow.url, name: 'hol-a', models: 'model-a', maxConcurrency: 1 });
    await startWorker({ server, backend: fast.url, name: 'hol-b', models: 'model-b', maxConcurrency: 1 });
    const busy = chat(server.url, 'model-a', { 'x-mock-first-delay-ms': '20000' });
    await until(async () => (await slow.stats()).active === 1, 'model-a busy');
    const queued = chat(server.url, 'model-a');
    await until(async () => (await health(server)).queue_depth === 1, 'model-a request queued');
    const other = await chat(server.url, 'model-b');
    assert.equal(other.status, 200);
    assert.match(other.text, /\[hol-fast\]/);
    void busy.catch(() => {});
    void queued.catch(() => {});
  });
});

describe('worker-side concurrency limit', () => {
  test('a worker refuses requests beyond --max-concurrency, whatever the server sends', async () => {
    const mock = await startMock(['--name', 'limit']);
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(wss, 'listening');
    const port = (wss.address() as { port: number }).port;
    const connected = once(wss, 'connection');
    const worker = await startWorker({ server: `http://127.0.0.1:${port}`, backend: mock.url, name: 'limit-w', maxConcurrency: 1, waitRegistered: false });
    const [ws] = (await connected) as [import('ws').WebSocket];
    const frames: Record<string, unknown>[] = [];
    const waiters: (() => void)[] = [];
    ws.on('message', (d, isBinary) => {
      frames.push(parseFrame(d, isBinary) as Record<string, unknown>);
      for (const w of waiters.splice(0)) w();
    });
    const next = async (pred: (f: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> => {
      for (;;) {
        const f = frames.find(pred);
        if (f) return f;
        await new Promise<void>((r) => waiters.push(r));
      }
    };
    const reg = await next((f) => f['type'] === 'register');
    assert.equal(reg['max_concurrent'], 1);
    ws.send(JSON.stringify({ type: 'register_ack', worker_id: 'w1', models: ['mock-model'], protocol_version: '2026-04-bridge-v1', extensions: reg['extensions'] }));
    const body = JSON.stringify({ model: 'mock-model', messages: [] });
    for (const id of ['r1', 'r2', 'r3']) {
      ws.send(JSON.stringify({ type: 'request', request_id: id, model: 'mock-model', endpoint_path: '/v1/chat/completions', is_streaming: false, body, headers: { 'x-mock-first-delay-ms': '300' } }));
    }
    const refusals = await Promise.all(['r2', 'r3'].map((id) => next((f) => f['type'] === 'error' && f['request_id'] === id)));
    for (const r of refusals) assert.equal(r['code'], 'worker_busy');
    const done = await next((f) => f['type'] === 'response_complete' && f['request_id'] === 'r1');
    assert.equal(done['status_code'], 200);
    assert.equal((await mock.stats()).maxActive, 1);
    await worker.kill();
    wss.close();
  });
});

test('queue_depth in /health is live', async () => {
  const mock = await startMock(['--name', 'depth']);
  const server = await startServer();
  await startWorker({ server, backend: mock.url, name: 'depth-w', maxConcurrency: 1 });
  const busy = chat(server.url, 'mock-model', { 'x-mock-first-delay-ms': '800' });
  await until(async () => (await mock.stats()).active === 1, 'busy');
  const q = [chat(server.url, 'mock-model'), chat(server.url, 'mock-model')];
  await until(async () => (await health(server)).queue_depth === 2, 'two queued');
  await Promise.all([busy, ...q]);
  assert.equal((await health(server)).queue_depth, 0);
});
