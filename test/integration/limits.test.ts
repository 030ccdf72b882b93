// The limits of README's "Limits" table that issue 12 added, each hit on a real server: the refusal
// it documents, and a stream that was already running (or another peer) carrying on untouched.
// (Body size and budget, header and body deadlines, per-address connections, registration caps and
// flow-control overdraft are in security-server.test.ts.)
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, afterEach, describe, test } from 'node:test';
import { health, killAll, startMock, startServer, startWorker, until, type ServerProc } from '../helpers/cluster.js';
import { assertIntactChatStream, chat, chatBody, openStream, rawPeer, rawWorker, upgradeStatus, type StreamReader } from './faults-util.js';

after(killAll);

const sockets: Socket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
});

function bounded<T>(p: Promise<T>, what: string, ms = 15_000): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms).unref())]);
}

/** A raw TCP client: what the server sent, and when it closed the connection. */
async function rawClient(server: ServerProc, text = ''): Promise<{ socket: Socket; received(): string; closed: Promise<string> }> {
  const socket = connect(Number(new URL(server.url).port), '127.0.0.1');
  sockets.push(socket);
  let got = '';
  socket.on('data', (d) => (got += d.toString()));
  socket.on('error', () => {});
  const closed = once(socket, 'close').then(() => got);
  await once(socket, 'connect');
  if (text) socket.write(text);
  return { socket, received: () => got, closed };
}

const GET_HEALTH = 'GET /health HTTP/1.1\r\nhost: relay\r\n\r\n';

function statusOf(text: string): number {
  return Number(/^HTTP\/1\.1 (\d{3}) /.exec(text)?.[1] ?? 0);
}

function bodyOf(text: string): any {
  return JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4));
}

/** A server with one worker on a mock backend, and a slow stream (20 tokens, 50 ms apart) under way. */
async function withStream(serverArgs: string[]): Promise<{ server: ServerProc; stream: StreamReader }> {
  const [server, mock] = await Promise.all([startServer(serverArgs), startMock(['--name', 'A'])]);
  await startWorker({ server, backend: mock.url, name: 'wA', maxConcurrency: 4 });
  const stream = await openStream(server, '/v1/chat/completions', chatBody({ stream: true }), { 'x-mock-tokens': '20', 'x-mock-delay-ms': '50' });
  assert.ok(await stream.until((t) => t.includes('[A] tok1')), 'the stream began');
  return { server, stream };
}

describe('client connections', () => {
  test('--max-connections caps open connections in all (503, closed); held ones keep working and a freed slot is usable', async () => {
    // fetch's pooled connection for the stream is one of the three.
    const { server, stream } = await withStream(['--max-connections', '3', '--max-connections-per-ip', '0']);
    // The worker's link is another: one more for the test, then the server is full.
    const held = await rawClient(server);
    const refused = await rawClient(server);
    const text = await bounded(refused.closed, 'the connection over the cap to be refused');
    assert.equal(statusOf(text), 503, text);
    assert.equal(bodyOf(text).error.code, 'too_many_connections');
    assert.match(bodyOf(text).error.message, /limit of 3 open connections/);
    assert.match(text, /retry-after: 1/i);
    await server.waitMsg('connection refused: the server holds --max-connections connections');
    // A connection the server holds still carries requests.
    held.socket.write(GET_HEALTH);
    await bounded(
      new Promise<void>((resolve) => held.socket.on('data', () => held.received().includes('"status":"ok"') && resolve())),
      'a held connection to answer',
    );
    assertIntactChatStream(await stream.rest(), 'A', 20);
    held.socket.destroy();
    // The server counts the slot free once it has seen the close, a moment after the client did.
    await until(async () => {
      const again = await rawClient(server, 'GET /health HTTP/1.1\r\nhost: relay\r\nconnection: close\r\n\r\n');
      return statusOf(await bounded(again.closed, 'a new connection to be answered')) === 200;
    }, 'a new connection accepted once the held one closed');
  });

  test('--max-header-bytes: larger request headers get 431 and the connection is closed; others are served', async () => {
    const { server, stream } = await withStream(['--max-header-bytes', '2048']);
    const big = await rawClient(server, `GET /health HTTP/1.1\r\nhost: relay\r\nx-pad: ${'p'.repeat(4096)}\r\n\r\n`);
    const text = await bounded(big.closed, 'the oversized headers to be refused');
    assert.equal(statusOf(text), 431, text);
    assert.equal(bodyOf(text).error.code, 'invalid_request');
    // No request exists yet, but the request line names the route: an Anthropic route gets its shape.
    const anthropic = await rawClient(server, `POST /v1/messages HTTP/1.1\r\nhost: relay\r\nx-pad: ${'p'.repeat(4096)}\r\n\r\n`);
    const aText = await bounded(anthropic.closed, 'the oversized Anthropic request to be refused');
    assert.equal(statusOf(aText), 431, aText);
    assert.equal(bodyOf(aText).type, 'error', 'Anthropic shape');
    // Headers under the limit, on another connection, are served.
    const fits = await chat(server, { 'x-pad': 'p'.repeat(1000) });
    assert.equal(fits.status, 200, JSON.stringify(fits.body));
    assertIntactChatStream(await stream.rest(), 'A', 20);
  });

  test('--keep-alive-timeout closes an idle keep-alive connection; a busy one (a long stream) is not idle', async () => {
    const [server, mock] = await Promise.all([startServer(['--keep-alive-timeout', '1']), startMock(['--name', 'A'])]);
    await startWorker({ server, backend: mock.url, name: 'wA' });
    // A stream three times longer than the idle limit.
    const stream = await openStream(server, '/v1/chat/completions', chatBody({ stream: true }), { 'x-mock-tokens': '30', 'x-mock-delay-ms': '100' });
    const idle = await rawClient(server, GET_HEALTH);
    const text = await bounded(idle.closed, 'the idle keep-alive connection to be closed');
    assert.equal(statusOf(text), 200, 'it was answered first');
    assert.ok(!stream.done, 'the stream was still running when the idle connection was closed');
    assertIntactChatStream(await stream.rest(), 'A', 30);
  });
});

describe('worker connections', () => {
  test('--register-timeout closes a worker that upgraded but never registered (1002); a registered one keeps serving', async () => {
    const { server, stream } = await withStream(['--register-timeout', '0.5']);
    const silent = await rawPeer(server);
    const closed = await bounded(silent.closed, 'the silent worker to be closed');
    assert.equal(closed.code, 1002);
    assert.match(closed.reason, /register expected/);
    assertIntactChatStream(await stream.rest(), 'A', 20);
    assert.equal((await health(server)).workers_connected, 1);
  });

  test('--max-pending-workers: upgrades beyond it get 503 + Retry-After until a pending one registers', async () => {
    const { server, stream } = await withStream(['--max-pending-workers', '2']);
    const pending = [await rawPeer(server), await rawPeer(server)];
    const refused = await upgradeStatus(server, 'test-secret');
    assert.equal(refused.status, 503);
    assert.equal(refused.retryAfter, '1');
    await server.waitMsg('worker connection refused');
    // The registered worker is not pending: it keeps serving, and new requests still reach it.
    assert.equal((await chat(server)).status, 200);
    // One pending peer registers: a slot is free again.
    pending[0]!.send({ type: 'register', worker_name: 'late', models: ['other-model'], max_concurrent: 1 });
    await pending[0]!.waitFrame((f) => f.type === 'register_ack', 'register_ack');
    assert.equal((await upgradeStatus(server, 'test-secret')).status, 101);
    assertIntactChatStream(await stream.rest(), 'A', 20);
  });

  test('--max-workers: a worker connection beyond it gets 503 + Retry-After; it is taken once one leaves', async () => {
    const { server, stream } = await withStream(['--max-workers', '2']);
    const second = await rawWorker(server, 'second', ['other-model']);
    const refused = await upgradeStatus(server, 'test-secret');
    assert.equal(refused.status, 503);
    assert.equal(refused.retryAfter, '1');
    // A real worker over the limit is refused too, and keeps retrying by itself.
    const mock = await startMock(['--name', 'C']);
    const third = await startWorker({ server, backend: mock.url, name: 'third', models: 'third-model', waitRegistered: false });
    await third.waitMsg('the server refused the connection', { status: 503 });
    assert.equal((await chat(server)).status, 200, 'the registered workers keep serving');
    assertIntactChatStream(await stream.rest(), 'A', 20);
    second.ws.close();
    await third.waitMsg('registered');
    assert.equal((await health(server)).workers_connected, 2);
  });
});
