// Attacks on a worker by the server it connects to (security review, issue 20): a server may only
// make the worker call the inference routes on its backend, can't run two requests under one id,
// and a backend's cookies never travel back. The "server" here is a raw WebSocket peer the test runs.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { killAll, startMock, startWorker, until, type Proc } from '../helpers/cluster.js';

after(killAll);

type Frame = Record<string, any>;

interface FakeServer {
  ws: WebSocket;
  frames: Frame[];
  next(pred: (f: Frame) => boolean, what: string): Promise<Frame>;
  request(id: string, endpoint: string, opts?: { streaming?: boolean; headers?: Record<string, string> }): void;
  close(): Promise<void>;
}

/** Runs a raw server, lets a real worker connect and register, acks it with the given extensions. */
async function fakeServer(backend: string, workerArgs: { maxConcurrency?: number; args?: string[] } = {}, extensions: string[] = ['request-error']): Promise<FakeServer & { worker: Proc }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const connected = once(wss, 'connection');
  const port = (wss.address() as AddressInfo).port;
  const worker = await startWorker({ server: `http://127.0.0.1:${port}`, backend, name: 'victim', maxConcurrency: workerArgs.maxConcurrency ?? 2, args: workerArgs.args ?? [], waitRegistered: false });
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`the worker never connected; stderr: ${worker.stderr.join('\n')}`)), 10_000).unref());
  const [ws] = (await Promise.race([connected, timeout])) as [WebSocket];
  const frames: Frame[] = [];
  const waiters: (() => void)[] = [];
  ws.on('message', (d) => {
    frames.push(JSON.parse(d.toString()) as Frame);
    for (const w of waiters.splice(0)) w();
  });
  const next = (pred: (f: Frame) => boolean, what: string): Promise<Frame> =>
    new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`fake server: timed out waiting for ${what}; frames: ${JSON.stringify(frames).slice(-600)}`)), 10_000);
      const check = (): void => {
        const f = frames.find(pred);
        if (f) {
          clearTimeout(t);
          resolve(f);
        } else waiters.push(check);
      };
      check();
    });
  await next((f) => f['type'] === 'register', 'register');
  ws.send(JSON.stringify({ type: 'register_ack', worker_id: 'w1', models: ['mock-model'], protocol_version: '2026-04-bridge-v1', extensions }));
  await worker.waitMsg('registered');
  const body = (streaming: boolean): string => JSON.stringify({ model: 'mock-model', stream: streaming, messages: [{ role: 'user', content: 'hi' }] });
  return {
    ws,
    frames,
    worker,
    next,
    request(id, endpoint, opts = {}) {
      const streaming = opts.streaming ?? false;
      ws.send(JSON.stringify({ type: 'request', request_id: id, model: 'mock-model', endpoint_path: endpoint, is_streaming: streaming, body: body(streaming), headers: opts.headers ?? {} }));
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
}

test('a server can make the worker call only the inference routes (and --extra-endpoints) on its backend', async () => {
  const mock = await startMock();
  const srv = await fakeServer(mock.url, { args: ['--extra-endpoints', '/v1/rerank'] });
  try {
    const attacks = [
      '/api/pull',
      '/v1/../../admin/shutdown',
      '/v1/chat/completions/../../api/pull',
      '/v1/%2e%2e/api/pull',
      '/v1/chat/completions%2f..%2f..%2fapi/pull',
      '//evil.example/v1/chat/completions',
      'http://evil.example/v1/chat/completions',
      'v1/chat/completions',
      '/v1/chat/completions/',
      '/V1/chat/completions',
      '',
    ];
    for (const [i, path] of attacks.entries()) {
      srv.request(`a${i}`, path);
      const answer = await srv.next((f) => f['request_id'] === `a${i}`, `answer to ${JSON.stringify(path)}`);
      assert.equal(answer['type'], 'response_complete', `${path}: answered`);
      assert.equal(answer['status_code'], 404, `${path}: refused`);
      assert.equal(JSON.parse(answer['body']).error.code, 'endpoint_not_allowed');
    }
    // An Anthropic-route refusal comes in Anthropic's shape.
    srv.request('anth', '/v1/messages/../../api/pull');
    const anth = await srv.next((f) => f['request_id'] === 'anth', 'anthropic-shaped refusal');
    assert.equal(JSON.parse(anth['body']).type, 'error');

    // What may be called is called, query strings included; the extra endpoint too.
    srv.request('ok1', '/v1/chat/completions');
    srv.request('ok2', '/v1/rerank');
    assert.equal((await srv.next((f) => f['request_id'] === 'ok1' && f['type'] === 'response_complete', 'ok1')).status_code, 200);
    await srv.next((f) => f['request_id'] === 'ok2' && f['type'] === 'response_complete', 'ok2');
    const byPath = (await mock.stats()).byPath;
    assert.equal(byPath['/v1/chat/completions'], 1);
    assert.equal(byPath['/v1/rerank'], 1, 'the extra endpoint reached the backend');
    const reached = Object.keys(byPath).filter((p) => p !== '/v1/chat/completions' && p !== '/v1/rerank' && p !== '/v1/models' && p !== '/health');
    assert.deepEqual(reached, [], 'no refused path reached the backend');
    // Refusals are logged, but not once per frame.
    assert.ok(srv.worker.count('refused a request for a path this worker does not forward') <= 5, 'refusals are rate-limited in the log');
  } finally {
    await srv.close();
  }
});

test('--extra-endpoints refuses paths that could escape (.., encoded, relative)', async () => {
  for (const bad of ['/v1/../admin', '/v1/%2e%2e', 'v1/rerank', '//host/x', '/v1//x']) {
    const w = await startWorker({ server: 'http://127.0.0.1:9', backend: 'http://127.0.0.1:9', name: 'x', args: ['--extra-endpoints', bad], waitRegistered: false });
    const exit = await w.exited;
    assert.equal(exit.code, 2, `${bad}: usage error`);
    assert.match(w.stderr.join('\n'), /--extra-endpoints/);
  }
  // A plain path is accepted: the worker runs (and keeps trying to reach its server).
  const ok = await startWorker({ server: 'http://127.0.0.1:9', backend: 'http://127.0.0.1:9', name: 'x', args: ['--extra-endpoints', '/v1/rerank,/v1/audio/speech'], waitRegistered: false });
  await ok.waitMsg('reconnecting');
  await ok.kill();
});

test('a request id that is already running is refused: it cannot bypass --max-concurrency or orphan the first', async () => {
  const mock = await startMock();
  const srv = await fakeServer(mock.url, { maxConcurrency: 2 });
  try {
    for (let i = 0; i < 10; i++) srv.request('same', '/v1/chat/completions', { streaming: true, headers: { 'x-mock-hang': '1' } });
    await until(async () => (await mock.stats()).active === 1, 'the first one running');
    await until(() => srv.frames.filter((f) => f['type'] === 'error' && f['code'] === 'duplicate_request_id').length === 9, 'nine duplicates refused');
    // The refusals are worker-level errors: none names the request, so none can end the running one.
    assert.ok(srv.frames.every((f) => !(f['type'] === 'error' && f['request_id'] === 'same')));
    // A fresh id still runs (the limit of 2 is not used up by the duplicates).
    srv.request('other', '/v1/chat/completions', { streaming: true, headers: { 'x-mock-hang': '1' } });
    await until(async () => (await mock.stats()).active === 2, 'the second id running');
    const stats = await mock.stats();
    assert.equal(stats.maxActive, 2, 'never more than --max-concurrency on the backend');
    assert.equal(stats.requests, 2);
    // The first runner is still reachable: a cancel stops it at the backend.
    srv.ws.send(JSON.stringify({ type: 'cancel', request_id: 'same', reason: 'client_disconnect' }));
    await until(async () => (await mock.stats()).aborted === 1, 'the first request aborted at the backend');
  } finally {
    await srv.close();
  }
});

test("a backend's Set-Cookie headers never travel back through the worker", async () => {
  const backend = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, [
        ['content-type', 'application/json'],
        ['set-cookie', 'a=1; Path=/'],
        ['set-cookie', 'b=2; Path=/'],
        ['x-kept', 'yes'],
      ]);
      res.end('{"ok":true}');
    });
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  const srv = await fakeServer(`http://127.0.0.1:${(backend.address() as AddressInfo).port}`, {}, []);
  try {
    srv.request('c1', '/v1/chat/completions');
    const answer = await srv.next((f) => f['request_id'] === 'c1', 'the answer');
    assert.equal(answer['status_code'], 200);
    assert.equal(answer['headers']['x-kept'], 'yes');
    assert.equal(answer['headers']['set-cookie'], undefined);
  } finally {
    await srv.close();
    backend.closeAllConnections();
    backend.close();
  }
});
