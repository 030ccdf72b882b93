// The relay's own deadlines: request timeout (504, and the worker is told to cancel) and queue
// timeout (503 with Retry-After).
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { health, killAll, startMock, startServer, startWorker, until } from '../helpers/cluster.js';
import { chat, startSpy, type Spy } from './faults-util.js';

const spies: Spy[] = [];
afterEach(async () => {
  await Promise.all(spies.splice(0).map((s) => s.close()));
  await killAll();
});

describe('relay deadlines', () => {
  test('request timeout: 504 in the OpenAI error shape, and the worker is told to cancel (reason timeout)', async () => {
    const [mock, server] = await Promise.all([startMock(['--name', 'slow']), startServer(['--request-timeout', '0.5'])]);
    const spy = await startSpy(server);
    spies.push(spy);
    await startWorker({ server: spy.url, backend: mock.url, name: 'w1', maxConcurrency: 1 });
    await server.waitMsg('worker registered', { worker: 'w1' });

    // The backend never answers: only the relay's deadline can end this request.
    const r = await chat(server, { 'x-mock-hang': '1' });
    assert.equal(r.status, 504, JSON.stringify(r.body));
    assert.equal(r.body.error.type, 'timeout_error');
    assert.equal(r.body.error.code, 'request_timeout');
    assert.equal(typeof r.body.error.message, 'string');

    const dispatched = await spy.waitFrame((f) => f.type === 'request', 'request frame');
    const cancel = await spy.waitFrame((f) => f.type === 'cancel', 'cancel frame');
    assert.equal(cancel.request_id, dispatched.request_id);
    assert.equal(cancel.reason, 'timeout');
    await until(async () => (await mock.stats()).aborted === 1, 'backend saw the abort');
    const line = await server.waitMsg('request finished', { error: 'request_timeout' });
    assert.equal(line['status'], 504);
  });

  test('queue timeout: 503 with Retry-After while the only slot is busy; the request never runs', async () => {
    const [mock, server] = await Promise.all([startMock(['--name', 'solo']), startServer(['--queue-timeout', '0.5'])]);
    await startWorker({ server, backend: mock.url, name: 'w1', maxConcurrency: 1 });

    // The busy request never finishes on its own: only the queue timeout can answer the second one.
    const ac = new AbortController();
    const busy = chat(server, { 'x-mock-hang': '1' }, ac.signal).catch(() => undefined);
    await until(async () => (await mock.stats()).active === 1, 'the busy request on the backend');

    const r = await chat(server);
    assert.equal(r.status, 503);
    assert.ok(r.headers.get('retry-after'), 'Retry-After is set');
    assert.ok(Number(r.headers.get('retry-after')) > 0);
    assert.equal(r.body.error.code, 'queue_timeout');
    assert.equal(r.body.error.type, 'server_error');
    assert.equal((await health(server)).queue_depth, 0);

    ac.abort();
    await busy;
    await until(async () => (await mock.stats()).aborted === 1, 'the busy request to be aborted at the backend');
    const s = await mock.stats();
    assert.equal(s.requests, 1, 'the timed-out request never reached the backend');
  });
});
