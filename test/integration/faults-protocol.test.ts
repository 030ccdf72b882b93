// Hostile or broken peers on the worker endpoint: a rogue worker writing into another worker's
// request, garbage frames, oversized frames and silent connections.
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { health, killAll, startMock, startServer, startWorker, until } from '../helpers/cluster.js';
import { assertIntactChatStream, chatBody, openStream, post, rawPeer, rawWorker, startSpy, type RawPeer, type Spy } from './faults-util.js';

const spies: Spy[] = [];
const peers: RawPeer[] = [];
afterEach(async () => {
  for (const p of peers.splice(0)) p.ws.terminate();
  await Promise.all(spies.splice(0).map((s) => s.close()));
  await killAll();
});

const DROPPED = 'dropped a message for a request this worker was never given';

describe('protocol faults', () => {
  test("a rogue worker's messages for another worker's request are dropped and logged; the rogue stays connected", async () => {
    const [mock, server] = await Promise.all([startMock(['--name', 'A']), startServer(['--heartbeat-interval', '0.2'])]);
    // The real worker talks to the server through a spy, which tells us the id of the request it gets.
    const spy = await startSpy(server);
    spies.push(spy);
    await startWorker({ server: spy.url, backend: mock.url, name: 'wA', maxConcurrency: 1 });
    await server.waitMsg('worker registered', { worker: 'wA' });
    const rogue = await rawWorker(server, 'rogue', ['other-model']);
    peers.push(rogue);

    const stream = await openStream(server, '/v1/chat/completions', chatBody({ stream: true }), { 'x-mock-tokens': '40', 'x-mock-delay-ms': '50' });
    const { request_id: id } = await spy.waitFrame((f) => f.type === 'request', 'request frame');
    assert.ok(await stream.until((t) => t.includes('[A] tok1')));

    rogue.send({ type: 'response_chunk', request_id: id, chunk: 'data: {"choices":[{"index":0,"delta":{"content":" ROGUE"}}]}\n\n' });
    rogue.send({ type: 'error', request_id: id, code: 'backend_error', message: 'ROGUE' });
    rogue.send({ type: 'response_complete', request_id: id, status_code: 500, body: '{"error":"ROGUE"}' });
    await until(() => server.count(DROPPED, { request_id: id, worker: 'rogue' }) === 3, 'three drops logged');
    assert.deepEqual(
      server.lines.filter((l) => l.msg === DROPPED).map((l) => l['type']),
      ['response_chunk', 'error', 'response_complete'],
    );
    assert.equal((await mock.stats()).active, 1, 'the real request was still in flight when the rogue wrote');

    const text = await stream.rest();
    assert.ok(!text.includes('ROGUE'), 'nothing of the rogue reached the client');
    assertIntactChatStream(text, 'A', 40);
    const done = await server.waitMsg('request finished', { request_id: id });
    assert.equal(done['worker'], 'wA');
    assert.equal(done['status'], 200);

    // Dropped, not fatal: the rogue is still registered, pinged, and serves its own model.
    assert.ok(rogue.isOpen());
    assert.equal(server.count('closing worker connection', { worker: 'rogue' }), 0);
    const pings = rogue.frames.filter((f) => f.type === 'ping').length;
    await rogue.waitFrame((f) => f.type === 'ping' && rogue.frames.filter((g) => g.type === 'ping').length > pings, 'a later ping');
    assert.equal((await health(server)).workers_connected, 2);
    const own = post(server, '/v1/chat/completions', JSON.stringify({ model: 'other-model', messages: [{ role: 'user', content: 'hi' }] }));
    const req = await rogue.waitFrame((f) => f.type === 'request', 'request for other-model');
    rogue.send({ type: 'response_complete', request_id: req.request_id, status_code: 200, headers: { 'content-type': 'application/json' }, body: '{"rogue":"ok"}' });
    const ownRes = await own;
    assert.equal(ownRes.status, 200);
    assert.deepEqual(await ownRes.json(), { rogue: 'ok' });
  });

  test('garbage frames close only the offender (1002 / 1009); a silent peer is closed; a real stream is unharmed', async () => {
    const [mock, server] = await Promise.all([startMock(['--name', 'A']), startServer(['--max-frame-bytes', '1048576'])]);
    await startWorker({ server, backend: mock.url, name: 'wA' });
    // Never registers: closed after the register window (5 s by default).
    const silent = await rawPeer(server);
    peers.push(silent);

    const stream = await openStream(server, '/v1/chat/completions', chatBody({ stream: true }), { 'x-mock-tokens': '60', 'x-mock-delay-ms': '50' });
    assert.ok(await stream.until((t) => t.includes('[A] tok1')));

    const notJson = await rawWorker(server, 'g-notjson', ['junk-model']);
    const unknownType = await rawWorker(server, 'g-unknown', ['junk-model']);
    const huge = await rawWorker(server, 'g-huge', ['junk-model']);
    const early = await rawPeer(server);
    peers.push(notJson, unknownType, huge, early);
    notJson.send('this is {not json');
    unknownType.send({ type: 'bogus', request_id: 'x' });
    huge.send(JSON.stringify({ type: 'pong', pad: 'x'.repeat(2 * 1024 * 1024) }));
    early.send('{"type":'); // garbage before register

    assert.equal((await notJson.closed).code, 1002);
    assert.equal((await unknownType.closed).code, 1002);
    assert.equal((await huge.closed).code, 1009);
    assert.equal((await early.closed).code, 1002);
    await until(() => server.count('protocol violation') >= 3, 'violations logged');
    assert.equal((await mock.stats()).active, 1, 'the real stream was running meanwhile');

    const text = await stream.rest();
    assertIntactChatStream(text, 'A', 60);
    assert.equal(server.count('closing worker connection', { worker: 'wA' }), 0);

    const silentClose = await silent.closed;
    assert.equal(silentClose.code, 1002);
    assert.match(silentClose.reason, /register/);
    await until(async () => (await health(server)).workers_connected === 1, 'only the real worker is left');
    assert.equal((await mock.stats()).requests, 1);
  });

  test('a worker answering with headers HTTP forbids gets its client a 502, not a crash', async () => {
    const server = await startServer();
    const rogue = await rawWorker(server, 'bad-headers', ['m']);
    peers.push(rogue);
    const cases: Record<string, string>[] = [{ 'bad name': 'x' }, { 'x-split': 'a\r\nset-cookie: evil=1' }, { 'x-ok': 'fine' }];
    for (const headers of cases) {
      const res = post(server, '/v1/chat/completions', JSON.stringify({ model: 'm', messages: [] }));
      const req = await rogue.waitFrame((f) => f.type === 'request' && !rogue.frames.some((g) => g.type === 'answered' && g.request_id === f.request_id), 'request');
      rogue.frames.push({ type: 'answered', request_id: req.request_id });
      rogue.send({ type: 'response_complete', request_id: req.request_id, status_code: 200, headers, body: '{"ok":true}' });
      const r = await res;
      const text = await r.text();
      if (headers['x-ok']) {
        assert.equal(r.status, 200, text);
        assert.equal(r.headers.get('x-ok'), 'fine');
      } else {
        assert.equal(r.status, 502, text);
        assert.equal(r.headers.get('set-cookie'), null);
        assert.match(JSON.parse(text).error.message, /header/i);
      }
    }
    assert.equal((await health(server)).workers_connected, 1, 'server up, worker still connected');
  });
});
