// The commands' life cycle as the README states it: every flag reads an env var and the flag wins;
// SIGTERM drains (the server tells its workers to drain too) and each side's --drain-timeout ends a
// drain that takes too long; a second signal exits at once.
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { SECRET, killAll, spawnCli, startMock, startServer, startWorker, until } from '../helpers/cluster.js';
import { within } from '../helpers/bounded.js';
import { chat, chatBody, openStream, rawWorker, sseData, type RawPeer } from './faults-util.js';
import { startFakeRelay, type FakeRelay } from './fakes.js';

const T = { timeout: 30_000 };
const peers: RawPeer[] = [];
const relays: FakeRelay[] = [];
afterEach(async () => {
  for (const p of peers.splice(0)) p.ws.terminate();
  await Promise.all(relays.splice(0).map((r) => r.close()));
  await killAll();
});

test('modelrelay-server reads its flags from env vars, and a flag beats its env var', T, async () => {
  // No --listen: LISTEN_ADDR must be read (the default would be 0.0.0.0:8080). Both the flag and the
  // env var name a secret: only the flag's opens the door.
  const server = spawnCli('server', 'server.js', ['--worker-secret', 'flag-secret'], { LISTEN_ADDR: '127.0.0.1:0', WORKER_SECRET: 'env-secret' });
  const listening = await server.waitMsg('listening');
  const url = listening['url'] as string;
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.notEqual(new URL(url).port, '8080');
  const mock = await startMock(['--name', 'env']);
  const refused = await startWorker({ server: url, backend: mock.url, name: 'env-secret-w', secret: 'env-secret', waitRegistered: false });
  await refused.waitFor((l) => String(l.msg).includes('refused the worker secret (401)'), "the env var's secret to be refused");
  await startWorker({ server: url, backend: mock.url, name: 'flag-secret-w', secret: 'flag-secret' });
});

test('modelrelay-worker reads its flags from env vars, and a flag beats its env var', T, async () => {
  const [mock, server] = await Promise.all([startMock(['--name', 'env']), startServer()]);
  const worker = spawnCli('worker', 'worker.js', ['--models', 'flag-model'], {
    PROXY_URL: server.url,
    WORKER_SECRET: SECRET,
    BACKEND_URL: mock.url,
    WORKER_NAME: 'env-named',
    MAX_CONCURRENCY: '3',
    MODELS: 'env-model',
  });
  const registered = await server.waitMsg('worker registered', { worker: 'env-named' });
  assert.deepEqual(registered['models'], ['flag-model'], 'the --models flag wins over MODELS');
  assert.equal(registered['max_concurrent'], 3);
  await worker.kill();
});

test('server: a second signal during the drain exits at once, without waiting for in-flight work', T, async () => {
  const [mock, server] = await Promise.all([startMock(['--name', 'A']), startServer(['--drain-timeout', '60'])]);
  await startWorker({ server, backend: mock.url, name: 'wA' });
  const ac = new AbortController();
  const inFlight = chat(server, { 'x-mock-hang': '1' }, ac.signal).catch(() => undefined);
  try {
    await until(async () => (await mock.stats()).active === 1, 'the request in flight');
    server.signal('SIGTERM');
    await server.waitMsg('shutting down: draining in-flight requests');
    server.signal('SIGINT');
    const exit = await within(server.exited, 'the server to exit on the second signal');
    assert.deepEqual(exit, { code: 1, signal: null });
    assert.equal(server.count('second signal: exiting now'), 1);
    assert.equal(server.count('shutdown complete'), 0, 'the drain finished: the second signal was not what ended it');
  } finally {
    ac.abort();
    await inFlight;
  }
});

test('worker: a second signal during the drain exits at once, without waiting for in-flight work', T, async () => {
  const [mock, server] = await Promise.all([startMock(['--name', 'A']), startServer()]);
  const worker = await startWorker({ server, backend: mock.url, name: 'wA', args: ['--drain-timeout', '60'] });
  const ac = new AbortController();
  const inFlight = chat(server, { 'x-mock-hang': '1' }, ac.signal).catch(() => undefined);
  try {
    await until(async () => (await mock.stats()).active === 1, 'the request in flight');
    worker.signal('SIGTERM');
    await worker.waitMsg('draining');
    worker.signal('SIGTERM');
    const exit = await within(worker.exited, 'the worker to exit on the second signal');
    assert.deepEqual(exit, { code: 1, signal: null });
    assert.equal(worker.count('second signal: exiting now'), 1);
    assert.equal(worker.count('drained; exiting'), 0);
  } finally {
    ac.abort();
    await inFlight;
  }
});

test('server SIGTERM tells every worker to drain; at --drain-timeout it cancels what is left, fails it, and exits 0', T, async () => {
  const [mock, server] = await Promise.all([startMock(['--name', 'A']), startServer(['--drain-timeout', '1'])]);
  const real = await startWorker({ server, backend: mock.url, name: 'real' });
  const rawW = await rawWorker(server, 'raw', ['raw-model']);
  peers.push(rawW);
  // One stream that began on the raw worker and never ends, one request the real worker's backend never answers.
  const stream = await (async () => {
    const s = openStream(server, '/v1/chat/completions', chatBody({ model: 'raw-model', stream: true }));
    const req = await rawW.waitFrame((f) => f.type === 'request', 'the stream on the raw worker');
    rawW.send({ type: 'response_chunk', request_id: req.request_id, chunk: 'data: {"n":1}\n\n' });
    return { reader: await s, id: req.request_id as string };
  })();
  assert.ok(await within(stream.reader.until((t) => t.includes('"n":1')), 'the first event'));
  const unanswered = chat(server, { 'x-mock-hang': '1' });
  await until(async () => (await mock.stats()).active === 1, 'the unanswered request on the real worker');

  server.signal('SIGTERM');
  const notice = await rawW.waitFrame((f) => f.type === 'graceful_shutdown', 'graceful_shutdown to the raw worker');
  assert.equal(notice.drain_timeout_secs, 1);
  const asked = await real.waitMsg('server asked us to drain');
  assert.equal(asked['drain_timeout_ms'], 1000);

  // The drain timeout passes with both still in flight.
  const closed = await within(rawW.closed, 'the server to close the raw worker after the drain timeout');
  assert.equal(closed.code, 1000);
  const cancel = rawW.frames.find((f) => f.type === 'cancel');
  assert.ok(cancel, 'the raw worker was closed without being told to cancel first');
  assert.equal(cancel.request_id, stream.id);
  assert.equal(cancel.reason, 'server_shutdown');
  const text = await within(stream.reader.rest(), 'the stream to end');
  assert.equal(JSON.parse(sseData(text).at(-1)!).error.code, 'shutting_down');
  const r = await within(unanswered, 'the unanswered request to be failed');
  assert.equal(r.status, 503);
  assert.equal(r.body.error.code, 'shutting_down');
  assert.match(r.headers.get('x-request-id') ?? '', /^req_/);
  await until(async () => (await mock.stats()).aborted === 1, "the real worker's backend call to be aborted");
  assert.deepEqual(await within(server.exited, 'the server to exit'), { code: 0, signal: null });
  assert.equal(server.count('shutdown complete'), 1);
});

test('worker SIGTERM: at --drain-timeout it stops the backend call it still runs and exits 0; the client gets an error event', T, async () => {
  const [mock, server] = await Promise.all([startMock(['--name', 'A']), startServer()]);
  const worker = await startWorker({ server, backend: mock.url, name: 'wA', args: ['--drain-timeout', '1'] });
  const stream = await openStream(server, '/v1/chat/completions', chatBody({ stream: true }), { 'x-mock-tokens': '1000', 'x-mock-delay-ms': '100' });
  assert.ok(await within(stream.until((t) => t.includes('[A] tok1')), 'the first token'));
  worker.signal('SIGTERM');
  await worker.waitMsg('draining');
  assert.deepEqual(await within(worker.exited, 'the worker to exit after its drain timeout'), { code: 0, signal: null });
  assert.equal(worker.count('drained; exiting'), 1);
  const stats = await mock.stats();
  assert.equal(stats.completed, 0, 'the stream finished: the drain timeout never had to act');
  await until(async () => (await mock.stats()).aborted === 1, 'the backend call to be aborted');
  // Never a silent truncation; and the stream was lost with its worker (which acks no cancel nobody
  // sent: that read as the backend failing, "failed mid-stream (status 499)").
  const text = await within(stream.rest(), 'the stream to end');
  const last = JSON.parse(sseData(text).at(-1)!) as { error?: { code: string } };
  assert.equal(last.error?.code, 'worker_lost', `the cut stream did not end with a worker_lost event: ${text.slice(-200)}`);
});

test("worker told to drain by its server: refuses new work, and closes the link at the server's drain_timeout_secs though a request still runs", T, async () => {
  const mock = await startMock(['--name', 'A']);
  const relay = await startFakeRelay();
  relays.push(relay);
  const worker = await startWorker({ server: relay.url, backend: mock.url, name: 'wA', waitRegistered: false });
  const link = await relay.link(1);
  await link.ack(['request-error']);
  await worker.waitMsg('registered');
  const body = JSON.stringify({ model: 'mock-model', messages: [] });
  link.send({ type: 'request', request_id: 'r1', model: 'mock-model', endpoint_path: '/v1/chat/completions', is_streaming: false, body, headers: { 'x-mock-hang': '1' } });
  await until(async () => (await mock.stats()).active === 1, 'r1 on the backend');
  link.send({ type: 'graceful_shutdown', reason: 'test', drain_timeout_secs: 1 });
  const asked = await worker.waitMsg('server asked us to drain');
  assert.equal(asked['drain_timeout_ms'], 1000);
  link.send({ type: 'request', request_id: 'r2', model: 'mock-model', endpoint_path: '/v1/chat/completions', is_streaming: false, body, headers: {} });
  const refusal = await link.frames.next((f) => f.request_id === 'r2', 'an answer to r2 sent during the drain');
  assert.equal(refusal.type, 'error');
  assert.equal(refusal.code, 'worker_draining');
  const closed = await within(link.closed, 'the worker to close the link at the drain timeout');
  assert.equal(closed.code, 1000);
  assert.equal((await mock.stats()).completed, 0, 'r1 finished: the drain timeout never had to act');
  await until(async () => (await mock.stats()).aborted === 1, "r1's backend call to be aborted");
  // A daemon: it comes back on a fresh session.
  await relay.link(2);
});
