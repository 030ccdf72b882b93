// Routing promises the protocol doc makes, checked with raw workers the test scripts frame by frame:
// request-error refusals are re-routed (the client sees success), a request that keeps losing its
// worker ends in requeue_exhausted, cancel-ack holds a slot until the ack or the 2 s grace, and a
// base-protocol stream is cut past 16 MiB waiting for a slow client.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, test } from 'node:test';
import { createLogger } from '../../src/log.js';
import { startServer as startInProcessServer } from '../../src/server/index.js';
import { SECRET, health, killAll, startMock, startServer, startWorker, until } from '../helpers/cluster.js';
import { within } from '../helpers/bounded.js';
import { chat, post, rawWorker, sseData, type RawPeer } from './faults-util.js';

/** These tests spread identical requests over workers: the least-loaded rule (round-robin among
 * equals), not cache-aware routing, which would keep sending an identical prompt to one worker. */
const SPREAD = ['--routing', 'least-loaded'];

const T = { timeout: 30_000 };
const peers: RawPeer[] = [];
after(async () => {
  for (const p of peers) p.ws.terminate();
  await killAll();
});

async function raw(server: Parameters<typeof rawWorker>[0], name: string, models: string[], extra: Record<string, unknown> = {}): Promise<RawPeer> {
  const peer = await rawWorker(server, name, models, extra);
  peers.push(peer);
  return peer;
}

const requests = (peer: RawPeer): any[] => peer.frames.filter((f) => f.type === 'request');

test('a worker_busy or worker_draining refusal is re-routed to another worker and the client gets its answer', T, async () => {
  const [mock, server] = await Promise.all([startMock(['--name', 'steady']), startServer(SPREAD)]);
  // The real worker has a request hanging in one of its two slots (utilisation 1/2), so an idle
  // raw worker (0/1) is the relay's first choice for the next request.
  await startWorker({ server, backend: mock.url, name: 'steady-w', maxConcurrency: 2 });
  const ac = new AbortController();
  const hanging = chat(server, { 'x-mock-hang': '1' }, ac.signal).catch(() => undefined);
  try {
    await until(async () => (await mock.stats()).active === 1, 'the hanging request on the real worker');
    const pickies: RawPeer[] = [];
    for (const code of ['worker_busy', 'worker_draining']) {
      const picky = await raw(server, `picky-${code}`, ['mock-model'], { extensions: ['request-error'] });
      pickies.push(picky);
      const pending = chat(server, { 'x-mock-tokens': '2' });
      const req = await picky.waitFrame((f) => f.type === 'request', `the request on the raw worker that will refuse it (${code})`);
      picky.send({ type: 'error', request_id: req.request_id, code, message: `refused: ${code}` });
      const r = await within(pending, `the answer to the request refused with ${code}`);
      assert.equal(r.status, 200, `a ${code} refusal reached the client instead of being re-routed: ${JSON.stringify(r.body)}`);
      assert.equal(r.content, '[steady] tok1 tok2');
      const done = await server.waitMsg('request finished', { request_id: req.request_id });
      assert.equal(done['worker'], 'steady-w');
      assert.equal(requests(picky).length, 1, `the refusing worker got ${requests(picky).length} requests`);
      await server.waitMsg('worker could not serve request', { request_id: req.request_id, code });
    }
    // The draining one (and the busy one, until it frees a slot) get nothing new.
    const next = await within(chat(server, { 'x-mock-tokens': '1' }), 'a request after the refusals');
    assert.equal(next.status, 200);
    assert.equal(next.content, '[steady] tok1');
    assert.deepEqual(pickies.map((p) => requests(p).length), [1, 1], 'a refusing worker was given more work');
  } finally {
    ac.abort();
    await hanging;
  }
});

test('a request that loses its worker more than --max-requeues times fails with requeue_exhausted', T, async () => {
  const server = await startServer([...SPREAD, '--max-requeues', '1']);
  const doomed = await Promise.all([raw(server, 'doomed-1', ['fragile']), raw(server, 'doomed-2', ['fragile'])]);
  const pending = post(server, '/v1/chat/completions', JSON.stringify({ model: 'fragile', messages: [] }));
  // Whichever worker gets it dies before answering; the request moves to the other, which dies too.
  for (let lost = 0; lost < 2; lost++) {
    const holder = (await until(() => doomed.find((p) => p.isOpen() && requests(p).length === 1), `the request on a live worker (loss ${lost + 1})`))!;
    holder.ws.terminate();
    await within(holder.closed, 'the raw worker to close');
  }
  const res = await within(pending, 'the answer after two worker losses');
  const body = (await res.json()) as { error: { code: string; message: string } };
  assert.equal(res.status, 502);
  assert.equal(body.error.code, 'requeue_exhausted');
  assert.match(body.error.message, /2 workers/);
  const ids = doomed.map((p) => requests(p)[0]?.request_id);
  assert.equal(ids[0], ids[1], 'both workers were given the same request');
  const line = await server.waitMsg('request finished', { request_id: ids[0] });
  assert.equal(line['error'], 'requeue_exhausted');
});

/** A client request that can be abandoned; resolves (never rejects) when it ends. */
function abandonable(url: string, model: string): { ac: AbortController; done: Promise<Response | undefined> } {
  const ac = new AbortController();
  const done = fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model, messages: [] }), signal: ac.signal }).catch(() => undefined);
  return { ac, done };
}

test('cancel-ack: without an ack the cancelled request holds its slot for the 2 s grace, then the next one runs', T, async () => {
  const server = await startServer(SPREAD);
  const worker = await raw(server, 'acker', ['grace-model'], { extensions: ['cancel-ack'] });
  const first = abandonable(server.url, 'grace-model');
  const r1 = await worker.waitFrame((f) => f.type === 'request', 'the first request');
  const abortedAt = performance.now();
  first.ac.abort();
  await first.done;
  await worker.waitFrame((f) => f.type === 'cancel' && f.request_id === r1.request_id, 'the cancel of the first request');
  const second = post(server, '/v1/chat/completions', JSON.stringify({ model: 'grace-model', messages: [] }));
  await until(async () => (await health(server)).queue_depth === 1, 'the second request to wait: the slot is held for the ack');
  const r2 = await worker.waitFrame((f) => f.type === 'request' && f.request_id !== r1.request_id, 'the second request once the grace expired');
  // A lower bound only, which load cannot break: the relay started its grace after this abort.
  const heldMs = performance.now() - abortedAt;
  assert.ok(heldMs >= 1900, `the slot was freed ${heldMs.toFixed(0)} ms after the abort, before the 2 s grace`);
  worker.send({ type: 'response_complete', request_id: r2.request_id, status_code: 200, body: '{"ok":true}' });
  assert.equal((await within(second, 'the second answer')).status, 200);
  // The late ack is dropped quietly; the worker stays.
  worker.send({ type: 'response_complete', request_id: r1.request_id, status_code: 499 });
  assert.equal((await health(server)).workers_connected, 1);
});

test('cancel-ack: the ack frees the slot the moment it arrives', T, async () => {
  // A grace far beyond the test's bounds: only the ack can free the slot here.
  const server = await startInProcessServer({ host: '127.0.0.1', port: 0, workerSecret: SECRET, scheduler: { cancelGraceMs: 600_000 } }, createLogger('silent'));
  try {
    const worker = await raw(server.url, 'acker', ['ack-model'], { extensions: ['cancel-ack'] });
    const first = abandonable(server.url, 'ack-model');
    const r1 = await worker.waitFrame((f) => f.type === 'request', 'the first request');
    first.ac.abort();
    await first.done;
    await worker.waitFrame((f) => f.type === 'cancel' && f.request_id === r1.request_id, 'the cancel of the first request');
    const second = post(server.url, '/v1/chat/completions', JSON.stringify({ model: 'ack-model', messages: [] }));
    await until(() => server.relay.scheduler.queueDepth === 1, 'the second request to wait for the ack');
    worker.send({ type: 'response_complete', request_id: r1.request_id, status_code: 499 });
    const r2 = await worker.waitFrame((f) => f.type === 'request' && f.request_id !== r1.request_id, 'the second request right after the ack');
    worker.send({ type: 'response_complete', request_id: r2.request_id, status_code: 200, body: '{"ok":true}' });
    assert.equal((await within(second, 'the second answer')).status, 200);
  } finally {
    await server.destroy();
  }
});

test('a base-protocol stream is cut with client_too_slow once 16 MiB wait for a client that does not read', T, async () => {
  const server = await startServer(SPREAD);
  const worker = await raw(server, 'firehose', ['firehose-model']); // no extensions: no flow-control
  const req = http.request(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' } });
  req.on('error', () => {});
  const response = new Promise<http.IncomingMessage>((resolve) => req.on('response', resolve));
  req.end(JSON.stringify({ model: 'firehose-model', stream: true, messages: [] }));
  const r = await worker.waitFrame((f) => f.type === 'request', 'the streaming request');
  const event = `data: ${JSON.stringify({ pad: 'x'.repeat(1024 * 1024) })}\n\n`;
  worker.send({ type: 'response_chunk', request_id: r.request_id, chunk: event });
  const res = await within(response, 'the response headers');
  res.pause(); // the client stops reading; kernel buffers fill, then the server's
  let sent = 1;
  const cancelled = (): boolean => worker.frames.some((f) => f.type === 'cancel' && f.request_id === r.request_id);
  while (!cancelled() && sent < 64) {
    await within(new Promise<void>((resolve, reject) => worker.ws.send(JSON.stringify({ type: 'response_chunk', request_id: r.request_id, chunk: event }), (err) => (err ? reject(err) : resolve()))), 'a chunk to be sent');
    sent++;
  }
  const cancel = await worker.waitFrame((f) => f.type === 'cancel' && f.request_id === r.request_id, `the cancel after ${sent} MiB sent to a client that reads nothing`);
  assert.ok(sent > 16, `cut after only ${sent} MiB`);
  assert.deepEqual(cancel.reason, { other: 'client too slow' });
  res.resume();
  const parts: Buffer[] = [];
  res.on('data', (c: Buffer) => parts.push(c));
  await within(new Promise((resolve) => res.on('end', resolve)), 'the cut stream to end');
  const last = JSON.parse(sseData(Buffer.concat(parts).toString('utf8')).at(-1)!) as { error: { code: string } };
  assert.equal(last.error.code, 'client_too_slow');
  const line = await server.waitMsg('request finished', { request_id: r.request_id });
  assert.equal(line['error'], 'client_too_slow');
  assert.ok(worker.isOpen(), 'the worker stays connected');
});
