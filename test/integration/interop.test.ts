// Interoperability with base-protocol peers: our worker against a server that acks no extensions,
// and our server with a worker that offers none. Extensions are negotiated, never assumed; the
// binary-frames extension is checked against an independent reading of its documented layout.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, test } from 'node:test';
import WebSocket from 'ws';
import { SECRET, killAll, startMock, startServer, startWorker, until } from '../helpers/cluster.js';
import { Arrivals, within } from '../helpers/bounded.js';
import { binaryFrame, parseFrame, startSpy } from './faults-util.js';
import { startFakeRelay } from './fakes.js';

after(killAll);

type Frame = Record<string, unknown>;

/** Collects a socket's frames; `next` awaits the first one matching a predicate, within a bound. */
function frames(ws: WebSocket): { all: Frame[]; next(pred: (f: Frame) => boolean, what: string): Promise<Frame> } {
  const got = new Arrivals<Frame>('frames from the peer');
  ws.on('message', (d: Buffer, binary: boolean) => got.push(parseFrame(d, binary) as Frame));
  return { all: got.all, next: (pred, what) => got.next(pred, what) };
}

test('our worker speaks the base protocol to a server that acks no extensions', async () => {
  const mock = await startMock(['--name', 'base']);
  const relay = await startFakeRelay();
  try {
    await startWorker({ server: relay.url, backend: mock.url, name: 'base-w', maxConcurrency: 1, waitRegistered: false });
    const link = await relay.link(1);
    const f = link.frames;
    const reg = await f.next((x) => x['type'] === 'register', 'register');
    assert.equal(reg['protocol_version'], '2026-04-bridge-v1');
    assert.ok(Array.isArray(reg['extensions']), 'our worker offers its extensions');
    // A reference server ignores the unknown field: its ack carries no `extensions`.
    link.send({ type: 'register_ack', worker_id: 'w1', models: ['mock-model'], protocol_version: '2026-04-bridge-v1' });
    const body = JSON.stringify({ model: 'mock-model', stream: true, messages: [] });
    const request = (id: string, headers: Record<string, string>): void =>
      link.send({ type: 'request', request_id: id, model: 'mock-model', endpoint_path: '/v1/chat/completions', is_streaming: true, body, headers });

    request('r1', { 'x-mock-hang': '1' });
    await until(async () => (await mock.stats()).active === 1, 'r1 on the backend');
    // Over the limit: a base server gets a 503 answer, not the request-error extension's `error`.
    request('r2', {});
    const r2 = await f.next((x) => x['request_id'] === 'r2', 'an answer to r2 (over the limit)');
    assert.equal(r2['type'], 'response_complete');
    assert.equal(r2['status_code'], 503);
    // Cancel: the backend call is aborted; no cancel-ack (499) is sent to a base server.
    link.send({ type: 'cancel', request_id: 'r1', reason: 'client_disconnect' });
    await until(async () => (await mock.stats()).aborted === 1, 'r1 aborted at the backend after the cancel');
    request('r3', { 'x-mock-tokens': '3' });
    const r3 = await f.next((x) => x['type'] === 'response_complete' && x['request_id'] === 'r3', 'response_complete for r3');
    assert.equal(r3['status_code'], 200);
    assert.equal(f.all.filter((x) => x['request_id'] === 'r1').length, 0, 'a frame about the cancelled r1 reached a base server');
    // No credit from this server: flow control must be off, so a long stream still completes.
    request('r4', { 'x-mock-tokens': '400', 'x-mock-chunk-bytes': '8192' });
    const r4 = await f.next((x) => x['type'] === 'response_complete' && x['request_id'] === 'r4', 'response_complete for the long r4 (no credit ever sent)');
    assert.equal(r4['status_code'], 200);
  } finally {
    await relay.close();
  }
});

/** A raw worker socket to our server, its frames recorded. */
async function rawLink(url: string): Promise<{ ws: WebSocket; f: ReturnType<typeof frames> }> {
  const ws = new WebSocket(`${url.replace('http', 'ws')}/v1/worker/connect`, { headers: { 'x-worker-secret': SECRET } });
  ws.on('error', () => {});
  const f = frames(ws);
  await within(once(ws, 'open'), 'the raw worker socket to open');
  return { ws, f };
}

test('our server serves a worker that offers no extensions, and acks none', async () => {
  const server = await startServer();
  const { ws, f } = await rawLink(server.url);
  try {
    ws.send(JSON.stringify({ type: 'register', worker_name: 'legacy', models: ['legacy-model'], max_concurrent: 1 }));
    const ack = await f.next((x) => x['type'] === 'register_ack', 'register_ack');
    assert.equal('extensions' in ack, false, 'ack must not list extensions to a peer that sent none');
    const answer = fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'legacy-model', stream: true, messages: [] }),
    });
    const req = await f.next((x) => x['type'] === 'request', 'the streamed request');
    assert.equal(req['is_streaming'], true);
    ws.send(JSON.stringify({ type: 'response_chunk', request_id: req['request_id'], chunk: 'data: {"x":1}\n\n' }));
    ws.send(JSON.stringify({ type: 'response_complete', request_id: req['request_id'], status_code: 200 }));
    const res = await within(answer, 'the streamed answer');
    assert.equal(res.status, 200);
    assert.equal(await within(res.text(), 'the streamed body'), 'data: {"x":1}\n\n');
    // Its cancels free the slot at once (no cancel-ack): a second request is dispatched right after.
    const ac = new AbortController();
    const first = fetch(`${server.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'legacy-model' }), signal: ac.signal }).catch(() => undefined);
    const r1 = await f.next((x) => x['type'] === 'request' && x['request_id'] !== req['request_id'], 'the request the client will abort');
    ac.abort();
    await first;
    const cancel = await f.next((x) => x['type'] === 'cancel' && x['request_id'] === r1['request_id'], 'cancel for the aborted request');
    assert.equal(cancel['reason'], 'client_disconnect');
    const second = fetch(`${server.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'legacy-model' }) });
    const r2 = await f.next(
      (x) => x['type'] === 'request' && x['request_id'] !== req['request_id'] && x['request_id'] !== r1['request_id'],
      'the next request, dispatched without any cancel-ack',
    );
    ws.send(JSON.stringify({ type: 'response_complete', request_id: r2['request_id'], status_code: 200, body: '{"ok":true}' }));
    assert.equal((await within(second, 'the answer to the next request')).status, 200);
  } finally {
    ws.terminate();
  }
});

test('binary-frames, negotiated: bodies and chunks cross as raw bytes both ways; garbage or unnegotiated binary closes 1002', async () => {
  const server = await startServer();
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/worker/connect`, { headers: { 'x-worker-secret': SECRET } });
  ws.on('error', () => {});
  const got = new Arrivals<{ frame: Frame; raw: Buffer; binary: boolean }>('frames from our server');
  ws.on('message', (d: Buffer, binary: boolean) => got.push({ frame: parseFrame(d, binary), raw: d, binary }));
  const next = (pred: (f: Frame) => boolean, what: string): Promise<{ frame: Frame; raw: Buffer; binary: boolean }> => got.next((x) => pred(x.frame), what);
  const closed = once(ws, 'close');
  let legacy: WebSocket | undefined;
  try {
    await within(once(ws, 'open'), 'the socket to open');
    ws.send(JSON.stringify({ type: 'register', worker_name: 'bin', models: ['bin-model'], max_concurrent: 4, protocol_version: '2026-04-bridge-v1', extensions: ['binary-frames'] }));
    const ack = await next((x) => x['type'] === 'register_ack', 'register_ack');
    assert.deepEqual(ack.frame['extensions'], ['binary-frames']);

    // A streamed request: the client's body arrives as the frame's payload, byte for byte.
    const body = JSON.stringify({ model: 'bin-model', stream: true, messages: [{ role: 'user', content: '"quotes" and ünïcödé 🎉' }] });
    const streamed = fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const req = await next((x) => x['type'] === 'request', 'the streamed request');
    assert.equal(req.binary, true);
    const h = req.raw.readUInt32BE(0);
    assert.ok(req.raw.subarray(4 + h).equals(Buffer.from(body)), 'payload = the client body bytes');
    const id = req.frame['request_id'] as string;
    const events = ['data: {"delta":"é\\"1"}\n\n', 'data: {"delta":"🎉2"}\n\n'];
    for (const chunk of events) ws.send(binaryFrame({ type: 'response_chunk', request_id: id, chunk }, 'chunk'));
    ws.send(JSON.stringify({ type: 'response_complete', request_id: id, status_code: 200 }));
    const sres = await within(streamed, 'the streamed answer');
    assert.equal(sres.status, 200);
    assert.equal(await within(sres.text(), 'the streamed body'), events.join(''));

    // A plain answer as a binary response_complete: status, headers and body all arrive.
    const plain = fetch(`${server.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'bin-model', messages: [] }) });
    const req2 = await next((x) => x['type'] === 'request' && x['request_id'] !== id, 'the plain request');
    const answer = '{"answer":"ünïcödé \\"ok\\""}';
    ws.send(binaryFrame({ type: 'response_complete', request_id: req2.frame['request_id'], status_code: 201, headers: { 'x-bin': 'yes', 'content-type': 'application/json' }, body: answer }, 'body'));
    const pres = await within(plain, 'the plain answer');
    assert.equal(pres.status, 201);
    assert.equal(pres.headers.get('x-bin'), 'yes');
    assert.equal(await within(pres.text(), 'the plain body'), answer);

    // A malformed binary frame is a protocol violation for this worker only.
    ws.send(Buffer.from([0, 0, 0, 9, 1]));
    const [code] = (await within(closed, 'our server to close the socket that sent a malformed binary frame')) as [number];
    assert.equal(code, 1002);

    // Without the extension, a binary frame is refused the same way.
    legacy = new WebSocket(`${server.url.replace('http', 'ws')}/v1/worker/connect`, { headers: { 'x-worker-secret': SECRET } });
    legacy.on('error', () => {});
    const legacyClosed = once(legacy, 'close');
    await within(once(legacy, 'open'), 'the legacy socket to open');
    legacy.send(JSON.stringify({ type: 'register', worker_name: 'legacy-bin', models: ['x'], max_concurrent: 1 }));
    await within(once(legacy, 'message'), 'register_ack for the legacy socket');
    legacy.send(binaryFrame({ type: 'response_chunk', request_id: 'r', chunk: 'x' }, 'chunk'));
    const [code2, reason2] = (await within(legacyClosed, 'our server to close the legacy socket that sent a binary frame')) as [number, Buffer];
    assert.equal(code2, 1002);
    assert.match(String(reason2), /binary-frames/);
  } finally {
    ws.terminate();
    legacy?.terminate();
  }
});

test('our server and worker negotiate binary-frames and relay through it', async () => {
  const [mock, server] = await Promise.all([startMock(['--name', 'B']), startServer()]);
  const spy = await startSpy(server);
  try {
    await startWorker({ server: spy.url, backend: mock.url, name: 'bin-w' });
    const ack = await spy.waitFrame((f) => f.type === 'register_ack', 'register_ack');
    assert.ok((ack.extensions as string[]).includes('binary-frames'));
    const body = JSON.stringify({ model: 'mock-model', messages: [{ role: 'user', content: 'ünïcödé "hi"' }] });
    const res = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-mock-tokens': '3' }, body });
    assert.equal(res.status, 200);
    const answer = (await res.json()) as { choices: { message: { content: string } }[] };
    assert.match(answer.choices[0]!.message.content, /tok3/);
    const req = await spy.waitFrame((f) => f.type === 'request', 'request');
    assert.equal(req.binary, true, 'the request went as a binary frame');
    assert.equal(req.body, body);
  } finally {
    await spy.close();
  }
});

test('--models auto against an Ollama that lists models only at /api/tags registers them, and they route', async () => {
  const [mock, server] = await Promise.all([startMock(['--name', 'olla', '--ollama-only', '--models', 'llama3.2:1b,qwen2.5:0.5b']), startServer()]);
  const direct = await fetch(`${mock.url}/v1/models`);
  assert.equal(direct.status, 404, 'the backend has no /v1/models: discovery must fall back');
  await direct.text();
  await startWorker({ server, backend: mock.url, name: 'olla-w', models: 'auto' });
  const listed = (await (await fetch(`${server.url}/v1/models`)).json()) as { data: { id: string }[] };
  assert.deepEqual(listed.data.map((m) => m.id).sort(), ['llama3.2:1b', 'qwen2.5:0.5b']);
  const res = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-mock-tokens': '2' },
    body: JSON.stringify({ model: 'qwen2.5:0.5b', messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(res.status, 200);
  const body = (await res.json()) as { model: string; choices: { message: { content: string } }[] };
  assert.equal(body.model, 'qwen2.5:0.5b');
  assert.match(body.choices[0]!.message.content, /\[olla\] tok1 tok2/);
});
