// Scheduling end to end: capacity limits, queueing, 429/503/404, least-loaded sharing and instant
// dispatch, with a real server, real workers and simulated backends.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { health, killAll, startMock, startServer, startWorker, until } from '../helpers/cluster.js';
import { within } from '../helpers/bounded.js';
import { PROTOCOL_VERSION, rawPeer, rawWorker, type RawPeer } from './faults-util.js';
import { startFakeRelay } from './fakes.js';

after(killAll);

async function chat(url: string, model: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<{ status: number; text: string; headers: Headers }> {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
    signal,
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

  test('two equal workers share four requests two and two', async () => {
    const a = await startMock(['--name', 'share-a']);
    const b = await startMock(['--name', 'share-b']);
    const server = await startServer();
    await startWorker({ server, backend: a.url, name: 'share-wa', maxConcurrency: 4 });
    await startWorker({ server, backend: b.url, name: 'share-wb', maxConcurrency: 4 });
    // The requests hang at the backends until the test lets go, so all four are in flight at once
    // however slowly they arrive: the split is decided by the relay alone.
    const ac = new AbortController();
    const pending = Array.from({ length: 4 }, () => chat(server.url, 'mock-model', { 'x-mock-hang': '1' }, ac.signal).catch(() => undefined));
    try {
      await until(async () => (await a.stats()).active + (await b.stats()).active === 4, 'all four requests to reach a backend');
      assert.deepEqual([(await a.stats()).active, (await b.stats()).active], [2, 2]);
    } finally {
      ac.abort();
      await Promise.all(pending);
    }
  });

  test('the third request against a busy worker and a full one-slot queue gets 429 with Retry-After', async () => {
    const mock = await startMock(['--name', 'full']);
    const server = await startServer(['--max-queue-len', '1']);
    await startWorker({ server, backend: mock.url, name: 'full-w', maxConcurrency: 1 });
    const ac = new AbortController();
    // The first request holds the only slot until the test lets go (no race with a delay).
    const first = chat(server.url, 'mock-model', { 'x-mock-hang': '1' }, ac.signal).catch(() => undefined);
    await until(async () => (await mock.stats()).active === 1, 'first request on the backend');
    const second = chat(server.url, 'mock-model');
    await until(async () => (await health(server)).queue_depth === 1, 'second request queued');
    const third = await chat(server.url, 'mock-model');
    assert.equal(third.status, 429);
    assert.ok(third.headers.get('retry-after'));
    assert.equal((JSON.parse(third.text) as { error: { code: string } }).error.code, 'queue_full');
    ac.abort();
    await first;
    assert.equal((await within(second, 'the queued request to be served once the slot freed')).status, 200);
  });

  test('a queue timeout answers 503 and the request never reaches a backend', async () => {
    const mock = await startMock(['--name', 'qt']);
    const server = await startServer(['--queue-timeout', '1']);
    await startWorker({ server, backend: mock.url, name: 'qt-w', maxConcurrency: 1 });
    const ac = new AbortController();
    // The busy request never finishes on its own, so only the queue timeout can answer the second.
    const busy = chat(server.url, 'mock-model', { 'x-mock-hang': '1' }, ac.signal).catch(() => undefined);
    try {
      await until(async () => (await mock.stats()).active === 1, 'busy request on the backend');
      const sent = performance.now();
      const waited = await within(chat(server.url, 'mock-model'), 'the queued request to time out');
      // A lower bound only, which load cannot break: the relay's clock starts after this one did.
      const waitedMs = performance.now() - sent;
      assert.equal(waited.status, 503);
      assert.ok(waited.headers.get('retry-after'));
      assert.equal((JSON.parse(waited.text) as { error: { code: string } }).error.code, 'queue_timeout');
      assert.ok(waitedMs >= 950, `answered after ${waitedMs.toFixed(0)} ms: before the 1 s queue timeout could expire`);
      assert.equal((await mock.stats()).requests, 1, 'the timed-out request reached the backend');
    } finally {
      ac.abort();
      await busy;
    }
  });

  test('a waiting request is dispatched by the event that frees capacity, before the worker\'s next frame is read', async () => {
    // Each raw worker makes capacity appear and, in the same write, sends a frame that gets it closed
    // (a second register). The server handles frames in order, so the queued request reaches that
    // worker before the close only if the event itself dispatched it: a timer or heartbeat would come
    // too late. The queue timeout is off, so nothing else can answer the request meanwhile.
    const server = await startServer(['--queue-timeout', '0', '--max-requeues', '10']);
    const peers: RawPeer[] = [];
    const ac = new AbortController();
    const send = (body: object): Promise<Response | undefined> =>
      fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: ac.signal }).catch(() => undefined);
    const closedBy = async (peer: RawPeer, what: string): Promise<void> => {
      const { code, reason } = await within(peer.closed, `the server to close the worker that ${what}`);
      assert.equal(code, 1002, reason);
    };
    try {
      const early = await rawWorker(server, 'early', ['mock-model']);
      peers.push(early);
      const first = send({ model: 'mock-model', messages: [] });
      const r1 = await early.waitFrame((f) => f.type === 'request', 'the first request on the early worker');
      const waiting = send({ model: 'mock-model', messages: [] });
      await until(async () => (await health(server)).queue_depth === 1, 'the second request to queue');

      // 1. A worker joins.
      const late = await rawPeer(server);
      peers.push(late);
      late.send({ type: 'register', worker_name: 'late', models: ['mock-model'], max_concurrent: 1, protocol_version: PROTOCOL_VERSION });
      late.send({ type: 'register', worker_name: 'late', models: ['mock-model'], max_concurrent: 1 });
      await closedBy(late, 'joined');
      assert.ok(late.frames.some((f) => f.type === 'request'), `the joining worker was closed before it got the waiting request: ${JSON.stringify(late.frames)}`);
      await until(async () => (await health(server)).queue_depth === 1, 'the request to queue again once the joiner left');

      // 2. A request finishes.
      early.send({ type: 'response_complete', request_id: r1.request_id, status_code: 200, body: '{}' });
      early.send({ type: 'register', worker_name: 'early', models: ['mock-model'], max_concurrent: 1 });
      await closedBy(early, 'finished a request');
      assert.equal(early.frames.filter((f) => f.type === 'request').length, 2, `the finishing worker was closed before it got the waiting request: ${JSON.stringify(early.frames)}`);
      assert.equal((await within(first, 'the first answer'))?.status, 200);
      await until(async () => (await health(server)).queue_depth === 1, 'the request to queue again');

      // 3. A worker changes its models.
      const changer = await rawWorker(server, 'changer', ['other-model']);
      peers.push(changer);
      changer.send({ type: 'models_update', models: ['other-model', 'mock-model'] });
      changer.send({ type: 'register', worker_name: 'changer', models: ['mock-model'], max_concurrent: 1 });
      await closedBy(changer, 'added the model');
      assert.ok(changer.frames.some((f) => f.type === 'request'), `the worker that added the model was closed before it got the waiting request: ${JSON.stringify(changer.frames)}`);
      void waiting;
    } finally {
      ac.abort();
      for (const p of peers) p.ws.terminate();
    }
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
  test('a worker refuses requests beyond --max-concurrency, whatever the server sends, and its backend never sees more', async () => {
    const mock = await startMock(['--name', 'limit']);
    const relay = await startFakeRelay();
    try {
      await startWorker({ server: relay.url, backend: mock.url, name: 'limit-w', maxConcurrency: 1, waitRegistered: false });
      const link = await relay.link(1);
      const reg = await link.ack(['request-error', 'cancel-ack']);
      assert.equal(reg.max_concurrent, 1);
      const body = JSON.stringify({ model: 'mock-model', messages: [] });
      const request = (id: string, headers: Record<string, string> = {}): void =>
        link.send({ type: 'request', request_id: id, model: 'mock-model', endpoint_path: '/v1/chat/completions', is_streaming: false, body, headers });
      // r1 holds the only slot until cancelled; r2 and r3 come on top of it, as a broken server would send them.
      request('r1', { 'x-mock-hang': '1' });
      request('r2');
      request('r3');
      for (const id of ['r2', 'r3']) {
        const refusal = await link.frames.next((f) => f.request_id === id, `the worker to refuse ${id} (it is over --max-concurrency 1)`);
        assert.equal(refusal.type, 'error', `${id} was answered with ${JSON.stringify(refusal)} instead of a refusal`);
        assert.equal(refusal.code, 'worker_busy');
      }
      await until(async () => (await mock.stats()).active === 1, 'r1 on the backend');
      const stats = await mock.stats();
      assert.equal(stats.requests, 1, 'the backend saw a refused request');
      assert.equal(stats.maxActive, 1, 'the backend saw more concurrent calls than --max-concurrency');
      // Once r1 is gone its slot is free again.
      link.send({ type: 'cancel', request_id: 'r1', reason: 'client_disconnect' });
      const ack = await link.frames.next((f) => f.type === 'response_complete' && f.request_id === 'r1', 'the cancel-ack for r1');
      assert.equal(ack.status_code, 499);
      request('r4', { 'x-mock-tokens': '2' });
      const done = await link.frames.next((f) => f.type === 'response_complete' && f.request_id === 'r4', 'r4 to complete in the freed slot');
      assert.equal(done.status_code, 200);
      assert.equal((await mock.stats()).maxActive, 1);
    } finally {
      await relay.close();
    }
  });
});

test('queue_depth in /health is live', async () => {
  const mock = await startMock(['--name', 'depth']);
  const server = await startServer();
  await startWorker({ server, backend: mock.url, name: 'depth-w', maxConcurrency: 1 });
  const ac = new AbortController();
  const busy = chat(server.url, 'mock-model', { 'x-mock-hang': '1' }, ac.signal).catch(() => undefined);
  await until(async () => (await mock.stats()).active === 1, 'busy');
  const q = [chat(server.url, 'mock-model'), chat(server.url, 'mock-model')];
  await until(async () => (await health(server)).queue_depth === 2, 'two queued');
  ac.abort();
  await busy;
  const done = await within(Promise.all(q), 'the two queued requests to be served');
  assert.deepEqual(done.map((r) => r.status), [200, 200]);
  assert.equal((await health(server)).queue_depth, 0);
});
