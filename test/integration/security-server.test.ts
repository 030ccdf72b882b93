// Attacks on the server, each as the security review performed it (issue 20): a worker that ignores
// flow-control credit, slow uploads, too many connections, greedy registrations, amplifying 404s,
// forged forwarding headers, malformed statuses and cookies from a worker, and log floods.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request as httpRequest, Agent } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, afterEach, describe, test } from 'node:test';
import { health, killAll, startMock, startServer, startWorker, until, type ServerProc } from '../helpers/cluster.js';
import { MODEL, chat, post, rawWorker } from './faults-util.js';

after(killAll);

const sockets: Socket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
});

/** A raw TCP client: writes `head` (and optional body), collects what comes back. */
function rawClient(server: ServerProc, text: string): { socket: Socket; received(): string; closed: Promise<string> } {
  const { port } = new URL(server.url);
  const socket = connect(Number(port), '127.0.0.1');
  sockets.push(socket);
  let got = '';
  socket.on('data', (d) => (got += d.toString()));
  socket.on('error', () => {});
  const closed = once(socket, 'close').then(() => got);
  if (text) socket.write(text);
  return { socket, received: () => got, closed };
}

function bounded<T>(p: Promise<T>, what: string, ms = 15_000): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms).unref())]);
}

const chatHead = (path: string, length: number | 'chunked'): string =>
  `POST ${path} HTTP/1.1\r\nhost: relay\r\ncontent-type: application/json\r\n` + (length === 'chunked' ? 'transfer-encoding: chunked\r\n' : `content-length: ${length}\r\n`) + '\r\n';

describe('a worker that ignores flow-control credit', () => {
  test('is closed with 1008 once it sends past its credit toward a client that does not read; the server stays up', async () => {
    const server = await startServer();
    const peer = await rawWorker(server, 'flooder', [MODEL], { extensions: ['flow-control'], max_concurrent: 4 });
    const ack = peer.frames.find((f) => f.type === 'register_ack');
    assert.ok(ack.extensions.includes('flow-control'), 'flow-control negotiated');
    // A streaming client that never reads its socket.
    const body = JSON.stringify({ model: MODEL, stream: true, messages: [] });
    const client = rawClient(server, chatHead('/v1/chat/completions', Buffer.byteLength(body)) + body);
    client.socket.pause();
    const req = await peer.waitFrame((f) => f.type === 'request', 'the request');
    const chunk = `data: ${'x'.repeat(64 * 1024)}\n\n`;
    let sent = 0;
    const pump = (async () => {
      while (peer.isOpen()) {
        if (peer.ws.bufferedAmount > 4 * 1024 * 1024) await new Promise((r) => setTimeout(r, 5));
        else {
          peer.send({ type: 'response_chunk', request_id: req.request_id, chunk });
          sent += chunk.length;
        }
        if (sent > 512 * 1024 * 1024) break; // the attack failed to get the worker closed
      }
    })();
    const closed = await bounded(peer.closed, 'the flooding worker to be closed');
    await pump;
    assert.equal(closed.code, 1008, `closed for a policy violation (${closed.reason})`);
    await server.waitMsg('worker sent beyond its flow-control credit');
    assert.equal((await health(server)).status, 'ok', 'the server is still up');
    assert.equal((await health(server)).workers_connected, 0);
  });
});

describe('slow and oversized uploads', () => {
  test('a body that does not arrive within --body-timeout gets 408 in the route shape; headers within --header-timeout', async () => {
    const server = await startServer(['--body-timeout', '1', '--header-timeout', '1']);
    const openai = rawClient(server, chatHead('/v1/chat/completions', 1000) + '{"model":');
    const anthropic = rawClient(server, chatHead('/v1/messages', 1000) + '{"model":');
    const headers = rawClient(server, 'POST /v1/chat/completions HTTP/1.1\r\nhost: relay\r\n');
    const silent = rawClient(server, '');
    const [a, b, c, d] = await bounded(Promise.all([openai.closed, anthropic.closed, headers.closed, silent.closed]), 'slow clients to be cut off');
    assert.match(a, /^HTTP\/1.1 408 /);
    assert.equal(JSON.parse(a.slice(a.indexOf('\r\n\r\n') + 4)).error.code, 'body_timeout');
    assert.match(b, /^HTTP\/1.1 408 /);
    assert.equal(JSON.parse(b.slice(b.indexOf('\r\n\r\n') + 4)).type, 'error', 'Anthropic shape');
    assert.match(c, /^HTTP\/1.1 408 /);
    assert.equal(JSON.parse(c.slice(c.indexOf('\r\n\r\n') + 4)).error.code, 'header_timeout');
    assert.match(d, /^HTTP\/1.1 408 |^$/, 'a silent connection is closed too');
  });

  test('request bodies share one budget: beyond --max-buffered-bytes a request gets 503 + Retry-After before its body is read', async () => {
    const [server, mock] = await Promise.all([startServer(['--max-buffered-bytes', '1000000', '--body-timeout', '30']), startMock()]);
    await startWorker({ server, backend: mock.url, name: 'w' });
    // Holds 800 kB of the budget: declared, partly sent, then silent.
    const holder = rawClient(server, chatHead('/v1/chat/completions', 800_000) + '{"model":"mock-model","x":"');
    holder.socket.write('y'.repeat(100_000));
    await until(() => holder.socket.bytesWritten > 100_000, 'the holder sent its first part');
    // Declares more than is left: refused at once, without reading, in each route's shape.
    const big = '{"model":"mock-model","pad":"' + 'z'.repeat(300_000) + '"}';
    for (const [path, shape] of [['/v1/chat/completions', 'openai'], ['/v1/messages', 'anthropic']] as const) {
      const r = await post(server, path, big);
      assert.equal(r.status, 503, path);
      assert.equal(r.headers.get('retry-after'), '1');
      const j = (await r.json()) as any;
      if (shape === 'openai') assert.equal(j.error.code, 'server_busy');
      else assert.equal(j.type, 'error');
    }
    // A chunked body (no declared length) is charged as it arrives and refused when it no longer fits.
    const chunked = rawClient(server, chatHead('/v1/chat/completions', 'chunked'));
    const piece = 'a'.repeat(100_000);
    for (let i = 0; i < 3; i++) chunked.socket.write(`${piece.length.toString(16)}\r\n${piece}\r\n`);
    const refused = await bounded(chunked.closed, 'the chunked upload to be refused');
    assert.match(refused, /^HTTP\/1.1 503 /);
    // Small requests still fit beside the holder.
    assert.equal((await chat(server)).status, 200);
    // Once the holder goes, the budget is whole again.
    holder.socket.destroy();
    await until(async () => (await post(server, '/v1/chat/completions', big.replace('"pad"', '"messages":[],"pad"'))).status === 200, 'the big request fits once the holder is gone');
  });

  test('--max-connections-per-ip caps open connections from one address (503, closed); a freed slot is usable', async () => {
    const server = await startServer(['--max-connections-per-ip', '3']);
    const held = [rawClient(server, ''), rawClient(server, ''), rawClient(server, '')];
    await Promise.all(held.map((h) => once(h.socket, 'connect')));
    await until(async () => {
      const extra = rawClient(server, '');
      const text = await bounded(extra.closed, 'the fourth connection to be refused');
      return /^HTTP\/1.1 503 /.test(text) && JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)).error.code === 'too_many_connections';
    }, 'a fourth connection refused');
    held[0]!.socket.destroy();
    await until(async () => {
      try {
        return (await fetch(`${server.url}/health`)).status === 200;
      } catch {
        return false;
      }
    }, 'a new connection accepted once one closed');
  });
});

describe('registrations and model names', () => {
  test('a worker claiming huge concurrency is capped, and does not outdraw a worker that has done the work', async () => {
    const [server, mock] = await Promise.all([startServer(['--max-worker-concurrency', '64']), startMock(['--name', 'honest'])]);
    await startWorker({ server, backend: mock.url, name: 'honest', maxConcurrency: 4 });
    // The honest worker shows its capacity: four at once, all completed.
    const warm = await Promise.all(Array.from({ length: 4 }, () => chat(server, { 'x-mock-first-delay-ms': '300' })));
    assert.deepEqual(warm.map((r) => r.status), [200, 200, 200, 200]);
    assert.equal((await mock.stats()).maxActive, 4);
    const greedy = await rawWorker(server, 'greedy', ['*', MODEL], { max_concurrent: 65_536 });
    const ack = greedy.frames.find((f) => f.type === 'register_ack');
    assert.ok(ack.warnings.some((w: string) => w.includes('capped at 64')), JSON.stringify(ack.warnings));
    // Four concurrent requests: the honest worker has room for all four; the greedy one gets at most one.
    const controller = new AbortController();
    const pending = Array.from({ length: 4 }, () => chat(server, { 'x-mock-first-delay-ms': '2000' }, controller.signal).catch(() => undefined));
    await until(async () => (await mock.stats()).active + greedy.frames.filter((f) => f.type === 'request').length === 4, 'all four dispatched');
    const toGreedy = greedy.frames.filter((f) => f.type === 'request').length;
    assert.ok(toGreedy <= 1, `the greedy worker drew ${toGreedy} of 4`);
    controller.abort();
    await Promise.all(pending);
  });

  test('the 404 for an unknown model lists a few models, not all; long model names are refused at both ends', async () => {
    const server = await startServer();
    const many = Array.from({ length: 1000 }, (_, i) => `model-${i}-${'n'.repeat(190)}`);
    const tooLong = 'L'.repeat(300);
    const peer = await rawWorker(server, 'lister', [...many, tooLong]);
    const ack = peer.frames.find((f) => f.type === 'register_ack');
    assert.equal(ack.models.length, 256, 'models per worker capped');
    assert.ok(!ack.models.includes(tooLong));
    assert.ok(ack.warnings.length <= 3, 'one warning per kind, not per name');
    const r = await post(server, '/v1/chat/completions', JSON.stringify({ model: 'nope', messages: [] }));
    assert.equal(r.status, 404);
    const text = await r.text();
    assert.ok(text.length < 2000, `404 body is ${text.length} bytes`);
    assert.match(JSON.parse(text).error.message, /and 251 more/);
    // A client's huge model name is a 400 that does not echo it.
    const huge = await post(server, '/v1/chat/completions', JSON.stringify({ model: 'm'.repeat(20 * 1024 * 1024), messages: [] }));
    assert.equal(huge.status, 400);
    const hugeText = await huge.text();
    assert.ok(hugeText.length < 1000, `400 body is ${hugeText.length} bytes`);
    assert.equal(JSON.parse(hugeText).error.code, 'invalid_request');
    assert.ok(server.lines.every((l) => JSON.stringify(l).length < 10_000), 'no log line carries the huge name or the whole model list');
  });
});

describe('what crosses the relay', () => {
  test('client-forged X-Forwarded-For, X-Real-IP and Forwarded never reach the backend; the relay sets its own', async () => {
    const [direct, proxied, mock] = await Promise.all([startServer(), startServer(['--trust-proxy']), startMock()]);
    await Promise.all([startWorker({ server: direct, backend: mock.url, name: 'a' }), startWorker({ server: proxied, backend: mock.url, name: 'b' })]);
    const forged = { 'x-forwarded-for': '6.6.6.6', 'x-real-ip': '6.6.6.6', forwarded: 'for=6.6.6.6', 'x-forwarded-host': 'evil.example' };
    assert.equal((await chat(direct, forged)).status, 200);
    let seen = (await mock.stats()).lastRequest!.headers;
    assert.equal(seen['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen['x-real-ip'], undefined);
    assert.equal(seen['forwarded'], undefined);
    assert.equal(seen['x-forwarded-host'], undefined);
    // Behind one trusted proxy: the client is the entry that proxy appended (the right-most).
    assert.equal((await chat(proxied, { ...forged, 'x-forwarded-for': '6.6.6.6, 198.51.100.7' })).status, 200);
    seen = (await mock.stats()).lastRequest!.headers;
    assert.equal(seen['x-forwarded-for'], '198.51.100.7');
  });

  test('a worker answering 101, 103, 204 or 304 cannot corrupt the client connection; a bad header gives "502 Bad Gateway"', async () => {
    const server = await startServer();
    const peer = await rawWorker(server, 'odd', [MODEL]);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const send = (): Promise<{ status: number; text: string; headers: Record<string, unknown>; statusMessage: string }> =>
      new Promise((resolve, reject) => {
        const body = JSON.stringify({ model: MODEL, messages: [] });
        const req = httpRequest(`${server.url}/v1/chat/completions`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
          let text = '';
          res.on('data', (d) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode!, text, headers: res.headers, statusMessage: res.statusMessage! }));
        });
        req.on('error', reject);
        req.end(body);
      });
    const answer = async (frame: Record<string, unknown>): Promise<void> => {
      const req = await peer.waitFrame((f) => f.type === 'request' && !f.answered, 'a request');
      req.answered = true;
      peer.send({ type: 'response_complete', request_id: req.request_id, ...frame });
    };
    const cases: [Record<string, unknown>, (r: Awaited<ReturnType<typeof send>>) => void][] = [
      [{ status_code: 101, headers: { upgrade: 'x' }, body: 'switched' }, (r) => assert.equal(r.status, 502)],
      [{ status_code: 103, body: 'early' }, (r) => assert.equal(r.status, 502)],
      [{ status_code: 204, headers: { 'content-length': '8', 'content-type': 'text/plain' }, body: 'not-here' }, (r) => {
        assert.equal(r.status, 204);
        assert.equal(r.text, '');
        assert.equal(r.headers['content-length'], undefined);
      }],
      [{ status_code: 304, body: 'not-here' }, (r) => {
        assert.equal(r.status, 304);
        assert.equal(r.text, '');
      }],
      [{ status_code: 200, headers: { 'bad header': 'x' }, body: '{}' }, (r) => {
        assert.equal(r.status, 502);
        assert.equal(r.statusMessage, 'Bad Gateway');
      }],
      // The same keep-alive connection still carries a normal answer afterwards.
      [{ status_code: 200, headers: { 'content-type': 'application/json' }, body: '{"fine":true}' }, (r) => {
        assert.equal(r.status, 200);
        assert.equal(r.text, '{"fine":true}');
      }],
    ];
    for (const [frame, check] of cases) {
      const [r] = await Promise.all([send(), answer(frame)]);
      check(r);
    }
    agent.destroy();
  });

  test('several Set-Cookie headers from a worker are not merged into one: they are dropped', async () => {
    const server = await startServer();
    const peer = await rawWorker(server, 'cookies', [MODEL]);
    const pending = chat(server);
    const req = await peer.waitFrame((f) => f.type === 'request', 'the request');
    peer.send({ type: 'response_complete', request_id: req.request_id, status_code: 200, headers: { 'content-type': 'application/json', 'set-cookie': 'a=1, b=2', 'x-kept': 'yes' }, body: '{}' });
    const r = await pending;
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('set-cookie'), null);
    assert.equal(r.headers.get('x-kept'), 'yes');
  });

  test('a worker flooding the server with bad frames does not flood its log', async () => {
    const server = await startServer();
    const peer = await rawWorker(server, 'noisy', [MODEL]);
    for (let i = 0; i < 2000; i++) peer.send({ type: 'response_chunk', request_id: `never-given-${i}`, chunk: 'x' });
    for (let i = 0; i < 500; i++) peer.send({ type: 'error', code: 'x', message: 'y' });
    // Frames are handled in order: once this update is logged, all of the above were handled.
    peer.send({ type: 'models_update', models: Array.from({ length: 200 }, (_, i) => `m${i}`) });
    const update = await server.waitMsg('worker models updated', { worker: 'noisy' });
    assert.equal(update['model_count'], 200);
    assert.ok((update['models'] as string[]).length <= 10, 'the update logs a count, not the list');
    assert.ok(server.count('dropped a message for a request this worker was never given') <= 5);
    assert.ok(server.count('worker reported an error') <= 5);
  });
});
