// Property tests of the request edge (issue 12): arbitrary methods, paths, headers and JSON (or not
// JSON) bodies on every route get an answer in the route's error shape, or are relayed from the
// backend unchanged; never a 500 of the relay's own, never a crash. Then raw bytes on the socket.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { request } from 'undici';
import { INFERENCE_ROUTES } from '../../src/protocol/index.js';
import { health, killAll, startMock, startServer, startWorker, type ServerProc } from '../helpers/cluster.js';

let server: ServerProc;
before(async () => {
  const mock = await startMock(['--name', 'fz']);
  server = await startServer(['--header-timeout', '1', '--body-timeout', '1', '--max-body-bytes', '65536']);
  await startWorker({ server, backend: mock.url, name: 'fz', models: 'mock-model' });
});
after(killAll);

const ROUTES = [...INFERENCE_ROUTES, '/v1/models', '/health', '/healthz', '/v1/worker/connect', '/'];
const safe = fc.string({ unit: fc.constantFrom(...'abcxyz019-_.~%/'.split('')), maxLength: 12 });
const path = fc.oneof(
  fc.constantFrom(...ROUTES),
  fc.tuple(fc.constantFrom(...ROUTES), fc.constantFrom('/', '?', '?stream=true&', '/x', '%2F', '//')).map(([r, s]) => r + s),
  safe.map((s) => `/v1/${s}`),
  safe.map((s) => `/v1/messages${s}`),
  fc.constantFrom(...ROUTES).map((r) => r.toUpperCase()),
);
const method = fc.constantFrom('GET', 'POST', 'POST', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'FROB');
// Any header a client may send, except the mock's knobs and the framing ones the client library owns.
const OWNED = new Set(['content-length', 'transfer-encoding', 'host', 'connection', 'upgrade', 'expect', 'keep-alive', 'te', 'trailer']);
const headerName = fc.oneof(
  fc.constantFrom('content-type', 'accept', 'authorization', 'x-api-key', 'anthropic-version', 'x-forwarded-for', 'forwarded', 'x-worker-secret', 'accept-encoding', 'cookie', 'x-request-id'),
  fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-!#$&^_`|~'.split('')), minLength: 1, maxLength: 10 }),
).filter((n) => !OWNED.has(n) && !n.startsWith('x-mock-'));
const headerValue = fc.string({ unit: fc.constantFrom(...' !"#$%&\'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~é'.split('')), maxLength: 20 }).map((v) => v.trim());
const headers = fc.dictionary(headerName, headerValue, { maxKeys: 5 });
const model = fc.oneof({ weight: 3, arbitrary: fc.constant('mock-model') }, { weight: 1, arbitrary: fc.jsonValue() }, { weight: 1, arbitrary: fc.string({ maxLength: 300 }) });
const stream = fc.oneof(fc.boolean(), fc.jsonValue());
const body = fc.oneof(
  { weight: 4, arbitrary: fc.record({ model, stream, messages: fc.jsonValue(), max_tokens: fc.jsonValue() }, { requiredKeys: [] }).map((o) => JSON.stringify(o)) },
  { weight: 2, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.string() },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)) },
  { weight: 1, arbitrary: fc.constant('') },
);

/** The relay's own error answers: a status it documents and the route's shape, never internal_error.
 * The models routes answer in Anthropic's shape when the request carries `anthropic-version`. */
function checkRelayAnswer(p: string, m: string, h: Record<string, string>, status: number, text: string): void {
  const route = p.split('?')[0]!.replace(/(.)\/$/, '$1');
  const models = route === '/v1/models' || route.startsWith('/v1/models/');
  if (status === 200) {
    assert.ok(route === '/health' || route === '/healthz' || (models && m === 'GET'), `a 200 of the relay's own for ${m} ${p}`);
    return;
  }
  assert.ok([400, 404, 405, 408, 413, 429, 502, 503, 504].includes(status), `status ${status} for ${m} ${p}: ${text.slice(0, 200)}`);
  if (m === 'HEAD') return;
  const j = JSON.parse(text);
  if (route.startsWith('/v1/messages') || (models && h['anthropic-version'] !== undefined)) {
    assert.equal(j.type, 'error', `Anthropic shape for ${m} ${p}: ${text}`);
    assert.equal(typeof j.error?.type, 'string');
    assert.equal(typeof j.error?.message, 'string');
  } else {
    assert.equal(typeof j.error?.message, 'string', `OpenAI shape for ${m} ${p}: ${text}`);
    assert.equal(typeof j.error?.type, 'string');
    assert.equal(typeof j.error?.code, 'string');
    assert.notEqual(j.error.code, 'internal_error');
  }
}

async function stillUp(): Promise<void> {
  assert.equal(server.child.exitCode, null, 'the server is running');
  assert.equal((await health(server)).status, 'ok');
  assert.deepEqual(server.stderr, [], 'nothing on stderr (an unexpected error is printed there)');
  assert.deepEqual(server.lines.filter((l) => l['level'] === 'error' || l['level'] === 'fatal'), [], 'no error logged');
}

test('arbitrary methods, paths, headers and bodies: a route-shaped answer or the backend relayed unchanged, never a 500', async () => {
  await fc.assert(
    fc.asyncProperty(method, path, headers, body, async (m, p, h, b) => {
      let res: Awaited<ReturnType<typeof request>>;
      let text: string;
      try {
        res = await request(`${server.url}${p}`, { method: m, headers: h, body: m === 'GET' || m === 'HEAD' ? undefined : b });
        text = await res.body.text();
      } catch (err) {
        throw new Error(`${m} ${p} ${JSON.stringify(h)} ${JSON.stringify(String(b).slice(0, 200))}: the request failed: ${(err as Error).message}`);
      }
      // The backend's own answer, relayed (a stream's headers are the relay's: SSE and X-Request-Id).
      if (res.headers['x-mock-backend'] || (res.statusCode === 200 && res.headers['content-type']?.includes('text/event-stream') && res.headers['x-request-id'])) return;
      assert.notEqual(res.statusCode, 500, `500 for ${m} ${p}: ${text}`);
      checkRelayAnswer(p, m, h, res.statusCode, text);
    }),
    { numRuns: 300 },
  );
  await stillUp();
});

test('a request node:http cannot parse is answered in the shape of the route its request line names', async () => {
  // Found by the property above: an unknown method on /v1/messages got the OpenAI shape.
  const cases = [
    ['FROB /v1/messages HTTP/1.1', true],
    ['FROB /v1/messages/count_tokens?x=1 HTTP/1.1', true],
    ['FROB /v1/chat/completions HTTP/1.1', false],
    ['FROB /v1/models HTTP/1.1', false],
    ['FROB /v1/models/ HTTP/1.1\r\nAnthropic-Version: 2023-06-01', true],
    ['\u0001garbage', false],
  ] as const;
  for (const [line, anthropic] of cases) {
    const text = await rawExchange(Buffer.from(`${line}\r\nhost: relay\r\n\r\n`));
    assert.match(text, /^HTTP\/1\.1 400 /, line);
    const j = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4));
    if (anthropic) assert.equal(j.type, 'error', `${line}: Anthropic shape`);
    else assert.equal(j.error.code, 'invalid_request', `${line}: OpenAI shape`);
  }
});

/** Bytes that look like a request, often don't, and sometimes are one. */
const rawRequest = fc.oneof(
  fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
  fc
    .record({
      m: fc.oneof(method, fc.string({ maxLength: 6 })),
      p: fc.oneof(path, fc.string({ maxLength: 20 })),
      v: fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1 ', ''),
      lines: fc.array(fc.oneof(fc.tuple(headerName, headerValue).map(([n, v]) => `${n}: ${v}`), fc.string({ maxLength: 30 }), fc.constantFrom('content-length: 5', 'content-length: -1', 'content-length: 99999999999', 'transfer-encoding: chunked', 'transfer-encoding: gzip, chunked', 'content-length: 2\r\ncontent-length: 3', 'expect: 100-continue', 'connection: upgrade\r\nupgrade: websocket', 'host:')), { maxLength: 5 }),
      b: body,
    })
    .map(({ m, p, v, lines, b }) => Buffer.concat([Buffer.from(`${m} ${p} ${v}\r\n${lines.join('\r\n')}${lines.length ? '\r\n' : ''}connection: close\r\n\r\n`), Buffer.from(b)])),
);

function rawExchange(bytes: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(Number(new URL(server.url).port), '127.0.0.1');
    let got = '';
    // The server closes each of these: once answered (connection: close) or at --header/--body-timeout.
    const bound = setTimeout(() => socket.destroy(), 10_000);
    socket.on('data', (d) => (got += d.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(bound);
      resolve(got);
    });
    void once(socket, 'connect').then(() => socket.write(bytes));
  });
}

test('raw bytes on the socket: answered with a documented status or closed; never a 500, never a crash', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(rawRequest, { minLength: 20, maxLength: 20 }), async (batch) => {
      const answers = await Promise.all(batch.map(rawExchange));
      for (const [i, a] of answers.entries()) {
        for (const m of a.matchAll(/HTTP\/1\.1 (\d{3}) /g)) {
          assert.notEqual(m[1], '500', `a 500 for ${JSON.stringify(batch[i]!.toString('latin1').slice(0, 200))}: ${a.slice(0, 300)}`);
        }
      }
    }),
    { numRuns: 6 },
  );
  await stillUp();
});
