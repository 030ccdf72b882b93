// Interoperability with base-protocol peers: our worker against a server that acks no extensions,
// and our server with a worker that offers none. Extensions are negotiated, never assumed.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { SECRET, killAll, startMock, startServer, startWorker, until } from '../helpers/cluster.js';

after(killAll);

type Frame = Record<string, unknown>;

/** Collects a socket's frames and lets a test await the first one matching a predicate. */
function frames(ws: WebSocket): { all: Frame[]; next(pred: (f: Frame) => boolean): Promise<Frame> } {
  const all: Frame[] = [];
  const waiters: (() => void)[] = [];
  ws.on('message', (d) => {
    all.push(JSON.parse(d.toString()) as Frame);
    for (const w of waiters.splice(0)) w();
  });
  return {
    all,
    async next(pred) {
      for (;;) {
        const f = all.find(pred);
        if (f) return f;
        await new Promise<void>((r) => waiters.push(r));
      }
    },
  };
}

test('our worker speaks the base protocol to a server that acks no extensions', async () => {
  const mock = await startMock(['--name', 'base']);
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const connected = once(wss, 'connection');
  const port = (wss.address() as { port: number }).port;
  await startWorker({ server: `http://127.0.0.1:${port}`, backend: mock.url, name: 'base-w', maxConcurrency: 1, waitRegistered: false });
  const [ws] = (await connected) as [WebSocket];
  const f = frames(ws);
  const reg = await f.next((x) => x['type'] === 'register');
  assert.equal(reg['protocol_version'], '2026-04-bridge-v1');
  assert.ok(Array.isArray(reg['extensions']), 'our worker offers its extensions');
  // A reference server ignores the unknown field: its ack carries no `extensions`.
  ws.send(JSON.stringify({ type: 'register_ack', worker_id: 'w1', models: ['mock-model'], protocol_version: '2026-04-bridge-v1' }));
  const body = JSON.stringify({ model: 'mock-model', stream: true, messages: [] });
  const request = (id: string, headers: Record<string, string>): void =>
    ws.send(JSON.stringify({ type: 'request', request_id: id, model: 'mock-model', endpoint_path: '/v1/chat/completions', is_streaming: true, body, headers }));

  request('r1', { 'x-mock-hang': '1' });
  await until(async () => (await mock.stats()).active === 1, 'r1 on the backend');
  // Over the limit: a base server gets a 503 answer, not the request-error extension's `error`.
  request('r2', {});
  const r2 = await f.next((x) => x['request_id'] === 'r2');
  assert.equal(r2['type'], 'response_complete');
  assert.equal(r2['status_code'], 503);
  // Cancel: the backend call is aborted; no cancel-ack (499) is sent to a base server.
  ws.send(JSON.stringify({ type: 'cancel', request_id: 'r1', reason: 'client_disconnect' }));
  await until(async () => (await mock.stats()).aborted === 1, 'r1 aborted at the backend');
  request('r3', { 'x-mock-tokens': '3' });
  const r3 = await f.next((x) => x['type'] === 'response_complete' && x['request_id'] === 'r3');
  assert.equal(r3['status_code'], 200);
  assert.equal(f.all.filter((x) => x['request_id'] === 'r1').length, 0, 'a frame about the cancelled r1 reached a base server');
  // No credit from this server: flow control must be off, so a long stream still completes.
  request('r4', { 'x-mock-tokens': '400', 'x-mock-chunk-bytes': '8192' });
  const r4 = await f.next((x) => x['type'] === 'response_complete' && x['request_id'] === 'r4');
  assert.equal(r4['status_code'], 200);
  ws.close();
  wss.close();
});

test('our server serves a worker that offers no extensions, and acks none', async () => {
  const server = await startServer();
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/worker/connect`, { headers: { 'x-worker-secret': SECRET } });
  const f = frames(ws);
  await once(ws, 'open');
  ws.send(JSON.stringify({ type: 'register', worker_name: 'legacy', models: ['legacy-model'], max_concurrent: 1 }));
  const ack = await f.next((x) => x['type'] === 'register_ack');
  assert.equal('extensions' in ack, false, 'ack must not list extensions to a peer that sent none');
  const answer = fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'legacy-model', stream: true, messages: [] }),
  });
  const req = await f.next((x) => x['type'] === 'request');
  assert.equal(req['is_streaming'], true);
  ws.send(JSON.stringify({ type: 'response_chunk', request_id: req['request_id'], chunk: 'data: {"x":1}\n\n' }));
  ws.send(JSON.stringify({ type: 'response_complete', request_id: req['request_id'], status_code: 200 }));
  const res = await answer;
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'data: {"x":1}\n\n');
  // Its cancels free the slot at once (no cancel-ack): a second request is dispatched right after.
  const ac = new AbortController();
  const first = fetch(`${server.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'legacy-model' }), signal: ac.signal }).catch(() => undefined);
  const r1 = await f.next((x) => x['type'] === 'request' && x['request_id'] !== req['request_id']);
  ac.abort();
  await first;
  const cancel = await f.next((x) => x['type'] === 'cancel' && x['request_id'] === r1['request_id']);
  assert.equal(cancel['reason'], 'client_disconnect');
  const second = fetch(`${server.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'legacy-model' }) });
  const r2 = await f.next((x) => x['type'] === 'request' && x['request_id'] !== req['request_id'] && x['request_id'] !== r1['request_id']);
  ws.send(JSON.stringify({ type: 'response_complete', request_id: r2['request_id'], status_code: 200, body: '{"ok":true}' }));
  assert.equal((await second).status, 200);
  ws.close();
});
