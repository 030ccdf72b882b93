// Workers that freeze (SIGSTOP: dropped on heartbeat timeout, work moves on) or stop politely
// (SIGTERM: drain, finish in-flight work, exit 0).
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { killAll, startMock, startServer, startWorker, until } from '../helpers/cluster.js';
import { chat, chatBody, chatStreamContent, openStream, sseData } from './faults-util.js';

afterEach(() => killAll());

describe('worker stop', () => {
  test('SIGSTOP of a worker holding a request: heartbeat timeout drops it, the request runs elsewhere', async () => {
    const [mockA, mockB, server] = await Promise.all([
      startMock(['--name', 'A', '--token-delay-ms', '10000']),
      startMock(['--name', 'B']),
      startServer(['--heartbeat-interval', '0.2', '--heartbeat-timeout', '1']),
    ]);
    const workerA = await startWorker({ server, backend: mockA.url, name: 'wA', maxConcurrency: 1 });
    const pending = chat(server);
    await until(async () => (await mockA.stats()).active === 1, 'request reached backend A');
    await startWorker({ server, backend: mockB.url, name: 'wB' });
    await server.waitMsg('worker registered', { worker: 'wB' });

    workerA.signal('SIGSTOP');
    try {
      const closing = await server.waitMsg('closing worker connection', { worker: 'wA' });
      assert.match(String(closing['reason']), /heartbeat/);
      const r = await pending;
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.match(r.content ?? '', /^\[B\] tok1/);
      const done = await server.waitMsg('request finished');
      assert.equal(done['worker'], 'wB');
      // A live worker that keeps answering pings is not dropped: B stayed registered throughout.
      assert.equal(server.count('closing worker connection', { worker: 'wB' }), 0);
    } finally {
      workerA.signal('SIGCONT');
    }
    // Woken up, A learns its link is gone, stops the stale backend call and joins again.
    await until(async () => (await mockA.stats()).aborted === 1, "A's stale backend call was aborted");
    await until(() => server.count('worker registered', { worker: 'wA' }) === 2, 'A registered again');
    await workerA.kill();
  });

  test('worker SIGTERM: the in-flight stream completes, new work goes elsewhere, exit code 0', async () => {
    const [mockA, mockB, server] = await Promise.all([startMock(['--name', 'A']), startMock(['--name', 'B']), startServer()]);
    // Only A serves 'a-only', so the first request lands on A; both serve mock-model.
    const [workerA] = await Promise.all([
      startWorker({ server, backend: mockA.url, name: 'wA', models: 'mock-model,a-only', maxConcurrency: 2 }),
      startWorker({ server, backend: mockB.url, name: 'wB' }),
    ]);
    await server.waitMsg('worker registered', { worker: 'wB' });
    const stream = await openStream(server, '/v1/chat/completions', chatBody({ model: 'a-only', stream: true }), { 'x-mock-tokens': '25', 'x-mock-delay-ms': '100' });
    assert.ok(await stream.until((t) => t.includes('[A] tok1')));

    workerA.signal('SIGTERM');
    await workerA.waitMsg('draining');
    await server.waitMsg('worker draining', { worker: 'wA' });
    const during = await chat(server);
    assert.equal(during.status, 200);
    assert.match(during.content ?? '', /^\[B\] tok1/, 'new work went to B although A has a free slot');
    assert.equal((await mockA.stats()).active, 1, "A's stream was still running when the new request was served");

    const text = await stream.rest();
    assert.equal(sseData(text).at(-1), '[DONE]');
    assert.ok(!text.includes('"error"'));
    assert.equal(chatStreamContent(text), ['[A] tok1', ...Array.from({ length: 24 }, (_, i) => ` tok${i + 2}`)].join(''));

    const exit = await workerA.exited;
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.equal(workerA.count('drained; exiting'), 1);
    const a = await mockA.stats();
    assert.equal(a.requests, 1);
    assert.equal(a.completed, 1);
  });
});
