// Clients that give up on the relay: mid-stream, mid-generation, and while still queued.
// Real processes from dist/; every wait is on a log line or polled state.
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { health, killAll, startMock, startServer, startWorker, until } from '../helpers/cluster.js';
import { chat, chatBody, openStream, post } from './faults-util.js';

afterEach(() => killAll());

describe('client aborts', () => {
  test('client aborts mid-stream: the backend call is aborted and the only slot frees', async () => {
    // A slot that stayed taken would show up as a queue timeout for the follow-up request.
    const [mock, server] = await Promise.all([startMock(['--name', 'solo']), startServer(['--queue-timeout', '1.5'])]);
    await startWorker({ server, backend: mock.url, name: 'w1', maxConcurrency: 1 });

    const ac = new AbortController();
    const stream = await openStream(server, '/v1/chat/completions', chatBody({ stream: true }), { 'x-mock-tokens': '200', 'x-mock-delay-ms': '50' }, ac.signal);
    assert.ok(await stream.until((t) => t.includes('[solo] tok1')), 'first chunk arrived');
    ac.abort();
    await assert.rejects(stream.rest(), /abort/i);

    await until(async () => (await mock.stats()).aborted === 1, 'backend saw its connection closed');
    const line = await server.waitMsg('request finished', { error: 'client_disconnect' });
    assert.equal(line['worker'], 'w1');

    const next = await chat(server);
    assert.equal(next.status, 200, JSON.stringify(next.body));
    assert.match(next.content ?? '', /^\[solo\] tok1/);
    const s = await mock.stats();
    assert.equal(s.maxActive, 1, 'never more than one backend call at a time');
    assert.equal(s.completed, 1);
  });

  test('client aborts a non-streaming request while the backend works: aborted, slot freed', async () => {
    const [mock, server] = await Promise.all([startMock(['--name', 'solo']), startServer(['--queue-timeout', '1.5'])]);
    await startWorker({ server, backend: mock.url, name: 'w1', maxConcurrency: 1 });

    const ac = new AbortController();
    const pending = post(server, '/v1/chat/completions', chatBody(), { 'x-mock-first-delay-ms': '5000' }, ac.signal);
    await until(async () => (await mock.stats()).active === 1, 'backend working on the request');
    ac.abort();
    await assert.rejects(pending, /abort/i);
    await until(async () => (await mock.stats()).aborted === 1, 'backend saw the abort');

    const next = await chat(server);
    assert.equal(next.status, 200, JSON.stringify(next.body));
    assert.match(next.content ?? '', /^\[solo\] tok1/);
    assert.equal((await mock.stats()).requests, 2);
  });

  test('a queued request whose client left leaves the queue and is never dispatched', async () => {
    const [mock, server] = await Promise.all([startMock(['--name', 'solo']), startServer()]);
    await startWorker({ server, backend: mock.url, name: 'w1', maxConcurrency: 1 });

    // The only slot is held by a call that never answers, until its client gives up at the end.
    const acBusy = new AbortController();
    const busy = post(server, '/v1/chat/completions', chatBody(), { 'x-mock-hang': '1' }, acBusy.signal);
    await until(async () => (await mock.stats()).active === 1, 'the slot is taken');

    const ac = new AbortController();
    const queued = post(server, '/v1/chat/completions', chatBody(), {}, ac.signal);
    await until(async () => (await health(server)).queue_depth === 1, 'second request queued');
    ac.abort();
    await assert.rejects(queued, /abort/i);
    await until(async () => (await health(server)).queue_depth === 0, 'queue empty again');
    await server.waitMsg('request finished', { error: 'client_disconnect' });
    assert.equal((await mock.stats()).requests, 1);

    // Free the slot. Had the abandoned request still been queued, it would be dispatched now,
    // before the probe (FIFO), and the backend would count three requests.
    acBusy.abort();
    await assert.rejects(busy, /abort/i);
    await until(async () => (await mock.stats()).aborted === 1, 'busy call aborted');
    const probe = await chat(server);
    assert.equal(probe.status, 200);
    assert.match(probe.content ?? '', /^\[solo\] tok1/);
    const s = await mock.stats();
    assert.equal(s.requests, 2, 'only the busy request and the probe reached the backend');
    assert.equal(server.count('request finished', { error: 'client_disconnect' }), 2);
  });
});
