// A worker whose backend is down, loading or failing must not black-hole traffic (issue 15):
// failover before the first byte, backend state reported by the worker (backend-health), models
// registered the moment a late backend comes up, and a circuit breaker for workers that can't tell.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { WebSocketServer, type WebSocket } from 'ws';
import { after, describe, test } from 'node:test';
import { killAll, startMock, startServer, startWorker, until, type MockProc, freePort } from '../helpers/cluster.js';
import { MODEL, chat, chatBody, chatStreamContent, messagesBody, post, rawWorker } from './faults-util.js';

/** These tests spread identical requests over workers: the least-loaded rule (round-robin among
 * equals), not cache-aware routing, which would keep sending an identical prompt to one worker. */
const SPREAD = ['--routing', 'least-loaded'];

after(killAll);


const mockOn = (port: number, args: string[] = []): Promise<MockProc> => startMock(['--listen', `127.0.0.1:${port}`, ...args]);

describe('failover before the first byte', () => {
  test('a dead backend behind one of two workers causes no client error; it gets traffic again once it returns', async () => {
    const portB = await freePort();
    const [server, mockA, mockB] = await Promise.all([startServer(SPREAD), startMock(['--name', 'A']), mockOn(portB, ['--name', 'B'])]);
    await Promise.all([
      startWorker({ server, backend: mockA.url, name: 'wA' }),
      startWorker({ server, backend: mockB.url, name: 'wB' }),
    ]);
    assert.equal((await chat(server)).status, 200);
    await mockB.kill(); // a llama-server that crashed: nothing listens on B's port now

    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await chat(server)).status);
    assert.deepEqual(statuses, Array(20).fill(200), 'no request fails while a healthy worker can serve it');
    await server.waitMsg('worker backend down', { worker: 'wB' });
    assert.ok(server.count('worker backend unavailable: trying another worker') <= 1, 'the dead backend cost at most one detour');

    // The backend comes back on its port: within seconds wB reports it and takes work again.
    const revived = await mockOn(portB, ['--name', 'B']);
    await server.waitMsg('worker backend up', { worker: 'wB' });
    await until(async () => {
      assert.equal((await chat(server)).status, 200);
      return (await revived.stats()).requests > 0;
    }, 'wB serving again');
  });

  test('a backend that dies after its status line, before its first event: the stream is served whole by the other worker', async () => {
    const [server, mockA, mockB] = await Promise.all([startServer(SPREAD), startMock(['--name', 'A']), startMock(['--name', 'B'])]);
    await Promise.all([startWorker({ server, backend: mockA.url, name: 'wA' }), startWorker({ server, backend: mockB.url, name: 'wB' })]);
    // On A only: 200 and the SSE headers, then the connection is cut before any event.
    const fault = { 'x-mock-reset-after': '0', 'x-mock-fault-on': 'A', 'x-mock-tokens': '3' };
    for (let i = 0; i < 4; i++) {
      const res = await post(server, '/v1/chat/completions', chatBody({ stream: true }), fault);
      const text = await res.text();
      assert.equal(res.status, 200, text);
      assert.equal(chatStreamContent(text), '[B] tok1 tok2 tok3', 'whole, from B, nothing of A in it');
    }
    assert.ok((await mockA.stats()).resets >= 1, 'A was tried and cut the stream');
  });

  test('when no other worker has a working backend the client gets the backend error, in the route shape, with the reason', async () => {
    const port = await freePort();
    const [server, mock] = await Promise.all([startServer(SPREAD), mockOn(port)]);
    await startWorker({ server, backend: mock.url, name: 'only' });
    await mock.kill();
    const r = await chat(server);
    assert.equal(r.status, 502);
    assert.equal(r.body.error.code, 'backend_unreachable');
    assert.match(r.body.error.message, /unreachable \(ECONNREFUSED\)/);
    const a = await post(server, '/v1/messages', messagesBody());
    assert.equal(a.status, 502, 'the worker is out of rotation now, so this one waits in no queue either');
    const j = (await a.json()) as any;
    assert.equal(j.type, 'error');
  });

  test('a backend still loading its model (503 "Loading model") is skipped, then used once loaded', async () => {
    const [server, ready, loading] = await Promise.all([startServer(SPREAD), startMock(['--name', 'ready']), startMock(['--name', 'loading', '--loading-ms', '10000'])]);
    await startWorker({ server, backend: ready.url, name: 'ready' });
    const wL = await startWorker({ server, backend: loading.url, name: 'loading' });
    await wL.waitMsg('backend down');
    await server.waitMsg('worker backend down', { worker: 'loading' });
    for (let i = 0; i < 5; i++) assert.equal((await chat(server)).status, 200);
    assert.equal((await loading.stats()).requests, 0, 'nothing was sent to the loading backend');
    await server.waitMsg('worker backend up', { worker: 'loading' }, 40_000);
    await until(async () => {
      assert.equal((await chat(server)).status, 200);
      return (await loading.stats()).requests > 0;
    }, 'the loaded backend serving');
  });

  test('a base-protocol server still gets the 502 answer from our worker', async () => {
    // A server that acks no extensions (a reference server): our worker answers as before.
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(wss, 'listening');
    const port = (wss.address() as { port: number }).port;
    const connected = once(wss, 'connection');
    const dead = await freePort();
    await startWorker({ server: `http://127.0.0.1:${port}`, backend: `http://127.0.0.1:${dead}`, name: 'base', waitRegistered: false });
    const [ws] = (await connected) as [WebSocket];
    const frames: any[] = [];
    ws.on('message', (d) => frames.push(JSON.parse(d.toString())));
    await until(() => frames.some((f) => f.type === 'register'), 'register');
    ws.send(JSON.stringify({ type: 'register_ack', worker_id: 'w1', models: [MODEL], protocol_version: '2026-04-bridge-v1' }));
    ws.send(JSON.stringify({ type: 'request', request_id: 'r1', model: MODEL, endpoint_path: '/v1/chat/completions', is_streaming: false, body: '{"model":"mock-model"}', headers: {} }));
    const answer = await until(() => frames.find((f) => f.request_id === 'r1'), 'the answer');
    assert.equal(answer.type, 'response_complete');
    assert.equal(answer.status_code, 502);
    assert.ok(!frames.some((f) => f.type === 'backend_status'), 'no backend_status to a server that did not negotiate it');
    for (const c of wss.clients) c.terminate();
    wss.close();
  });
});

describe('start-up before the backend', () => {
  test('a worker started before its backend registers the models within seconds of it coming up', async () => {
    const port = await freePort();
    const server = await startServer(SPREAD);
    const w = await startWorker({ server, backend: `http://127.0.0.1:${port}`, name: 'early', models: 'auto', waitRegistered: false });
    const reg = await server.waitMsg('worker registered', { worker: 'early' });
    assert.equal(reg['model_count'], 0);
    await w.waitMsg('backend down');
    await startMock(['--listen', `127.0.0.1:${port}`, '--models', 'late-model']);
    const update = await server.waitMsg('worker models updated', { worker: 'early' });
    assert.deepEqual(update['models'], ['late-model']);
    const r = await post(server, '/v1/chat/completions', JSON.stringify({ model: 'late-model', messages: [] }));
    assert.equal(r.status, 200);
  });
});

describe('circuit breaker', () => {
  test('a base-protocol worker that keeps failing is skipped for the cool-down, probed once, and back once it succeeds', async () => {
    const [server, mock] = await Promise.all([startServer([...SPREAD, '--breaker-failures', '3', '--breaker-cooldown', '1']), startMock(['--name', 'good'])]);
    await startWorker({ server, backend: mock.url, name: 'good' });
    const bad = await rawWorker(server, 'bad', [MODEL]); // no extensions: it can only answer
    let failing = true;
    const arrivals: number[] = [];
    bad.ws.on('message', (d) => {
      const f = JSON.parse(d.toString());
      if (f.type !== 'request') return;
      arrivals.push(Date.now());
      bad.send(
        failing
          ? { type: 'response_complete', request_id: f.request_id, status_code: 502, headers: { 'content-type': 'application/json' }, body: '{"error":{"message":"upstream down"}}' }
          : { type: 'response_complete', request_id: f.request_id, status_code: 200, headers: { 'content-type': 'application/json' }, body: '{"ok":true}' },
      );
    });
    const drive = async (until: () => boolean, what: string): Promise<void> => {
      const end = Date.now() + 20_000;
      while (!until()) {
        if (Date.now() > end) throw new Error(`timed out driving traffic until ${what} (bad got ${arrivals.length})`);
        await chat(server);
      }
    };
    await drive(() => arrivals.length >= 3, 'three failures');
    const tripped = arrivals[2]!;
    await drive(() => arrivals.length >= 4, 'the probe');
    assert.ok(arrivals[3]! - tripped >= 1000, `the probe came ${arrivals[3]! - tripped} ms after the trip, not before the cool-down`);
    // The probe failed: reopened for twice as long. Now the worker recovers.
    failing = false;
    await drive(() => arrivals.length >= 5, 'the second probe');
    assert.ok(arrivals[4]! - arrivals[3]! >= 2000, `second cool-down was ${arrivals[4]! - arrivals[3]!} ms`);
    await drive(() => arrivals.length >= 8, 'traffic back on the recovered worker');
  });
});
