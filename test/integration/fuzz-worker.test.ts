// A rogue worker, property-generated (issue 12): over a real WebSocket it sends sequences of
// messages a broken or hostile worker might (answers for ids it doesn't hold, including ids guessed
// from its own and the honest worker's, completes twice, chunks after complete, model changes
// mid-request, bogus loads, refusals, backend up/down reports, malformed frames), while an honest worker streams. The honest
// worker's requests arrive whole and exact, and the scheduler's invariants hold after every event.
// The server runs in this process, so its scheduler can be checked step by step.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { pino } from 'pino';
import WebSocket from 'ws';
import { Agent, request } from 'undici';
import { startServer as startInProcess, type RunningServer } from '../../src/server/index.js';
import type { Scheduler } from '../../src/core/index.js';
import { bodyDigest } from '../../src/mock-backend/content.js';
import { SECRET, killAll, startMock, startWorker, until } from '../helpers/cluster.js';
import { binaryFrame } from './faults-util.js';

const PROTOCOL_VERSION = '2026-04-bridge-v1';
const logLines: Record<string, unknown>[] = [];
const violations: string[] = [];
let server: RunningServer;
const agent = new Agent({ connections: 64 });

/** Runs checkInvariants after every event the relay feeds the scheduler, and keeps any breach. */
function watchInvariants(s: Scheduler): void {
  const events = ['submit', 'markStarted', 'touch', 'cancel', 'complete', 'backendUnavailable', 'backendState', 'requestFailed', 'registerWorker', 'updateModels', 'workerLoad', 'workerSeen', 'drainWorker', 'workerLost', 'stopAccepting', 'tick'] as const;
  for (const name of events) {
    const fn = (s[name] as (...a: unknown[]) => unknown).bind(s);
    (s as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
      const out = fn(...args);
      try {
        s.checkInvariants();
      } catch (err) {
        violations.push(`after ${name}(${JSON.stringify(args).slice(0, 200)}): ${(err as Error).message}`);
      }
      return out;
    };
  }
}

before(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) logLines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  server = await startInProcess(
    { host: '127.0.0.1', port: 0, workerSecret: SECRET, registerTimeoutMs: 2000, scheduler: { requestTimeoutMs: 2000, queueTimeoutMs: 500, maxQueueLen: 100 } },
    pino({ level: 'info' }, sink),
  );
  watchInvariants(server.relay.scheduler);
  // Learn which worker each request went to, as it is dispatched: the relay's command, observed.
  const relay = server.relay as unknown as { execute(c: { type: string; requestId?: string; workerId?: string }): void; sessions: Map<string, { name: string }> };
  const execute = relay.execute.bind(relay);
  relay.execute = (c) => {
    if (c.type === 'dispatch' && c.requestId && c.workerId) dispatched.set(c.requestId, relay.sessions.get(c.workerId)?.name ?? '?');
    execute(c);
  };
  const mock = await startMock(['--name', 'hz']);
  await startWorker({ server: server.url, backend: mock.url, name: 'honest', models: 'honest-model,shared', maxConcurrency: 8 });
});
after(async () => {
  await agent.close();
  await killAll();
  await server.destroy();
});

// ---------- the rogue ----------

type IdRef = { kind: 'mine'; k: number } | { kind: 'honest'; k: number } | { kind: 'guess'; offset: number } | { kind: 'random'; id: string };

type Action =
  | { t: 'chunk'; id: IdRef; chunk: string }
  | { t: 'complete'; id: IdRef; status: number; body?: string; headers?: Record<string, string> }
  | { t: 'error'; id?: IdRef; code: string }
  | { t: 'models'; models: string[]; groups?: { models: string[]; max_concurrency: number }[] }
  | { t: 'pong'; load: number }
  | { t: 'draining' }
  | { t: 'backend'; state: 'up' | 'down' }
  | { t: 'client'; model: string; stream: boolean }
  | { t: 'wait'; ms: number }
  | { t: 'fatal'; frame: 'binary' | 'garbage' | 'register' | 'bad-status' };

const idRef: fc.Arbitrary<IdRef> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('mine' as const), k: fc.nat(5) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('honest' as const), k: fc.nat(5) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('guess' as const), offset: fc.integer({ min: -3, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('random' as const), id: fc.string({ minLength: 1, maxLength: 20 }) }) },
);
const sse = fc.oneof(fc.constant('data: {"choices":[{"delta":{"content":"ROGUE"}}]}\n\n'), fc.constant('data: [DONE]\n\n'), fc.string({ maxLength: 20 }));
const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ t: fc.constant('chunk' as const), id: idRef, chunk: sse }) },
  {
    weight: 5,
    arbitrary: fc.record(
      { t: fc.constant('complete' as const), id: idRef, status: fc.constantFrom(200, 200, 404, 499, 500, 503, 204, 101), body: fc.oneof(fc.constant('{"rogue":true}'), fc.string({ maxLength: 10 })), headers: fc.dictionary(fc.constantFrom('content-type', 'x-rogue', 'set-cookie', 'transfer-encoding', 'content-length'), fc.string({ maxLength: 8 }), { maxKeys: 2 }) },
      { requiredKeys: ['t', 'id', 'status'] },
    ),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('error' as const), id: fc.option(idRef, { nil: undefined }), code: fc.constantFrom('worker_busy', 'worker_draining', 'backend_unavailable', 'backend_unreachable', 'x') }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('backend' as const), state: fc.constantFrom('up' as const, 'down' as const) }) },
  {
    weight: 2,
    arbitrary: fc.record(
      {
        t: fc.constant('models' as const),
        models: fc.subarray(['shared', 'rogue-model', 'other-model']),
        // backend-slots: groups that may name models it doesn't serve, overlap, or claim more than it may.
        groups: fc.array(fc.record({ models: fc.subarray(['shared', 'rogue-model', 'other-model', '*', 'nobody']), max_concurrency: fc.integer({ min: 1, max: 9 }) }), { maxLength: 3 }),
      },
      { requiredKeys: ['t', 'models'] },
    ),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('pong' as const), load: fc.nat(20) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('draining' as const) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('client' as const), model: fc.constantFrom('rogue-model', 'shared', 'other-model'), stream: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 30 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('fatal' as const), frame: fc.constantFrom('binary' as const, 'garbage' as const, 'register' as const, 'bad-status' as const) }) },
);
const registration = fc.record({
  models: fc.subarray(['shared', 'rogue-model', 'other-model'], { minLength: 1 }),
  maxConcurrent: fc.integer({ min: 0, max: 4 }),
  extensions: fc.subarray(['request-error', 'cancel-ack', 'drain-notice', 'flow-control', 'binary-frames', 'backend-health', 'backend-slots']),
});

interface Rogue {
  ws: WebSocket;
  requests: string[];
  closed: Promise<unknown>;
}

async function connectRogue(reg: { models: string[]; maxConcurrent: number; extensions: string[] }): Promise<Rogue> {
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/worker/connect`, { headers: { 'x-worker-secret': SECRET }, perMessageDeflate: false });
  const requests: string[] = [];
  ws.on('error', () => {});
  const acked = new Promise<void>((resolve) =>
    ws.on('message', (data, isBinary) => {
      const f = isBinary ? JSON.parse((data as Buffer).subarray(4, 4 + (data as Buffer).readUInt32BE(0)).toString()) : JSON.parse(data.toString());
      if (f.type === 'register_ack') resolve();
      if (f.type === 'request') requests.push(f.request_id);
    }),
  );
  const closed = once(ws, 'close');
  await once(ws, 'open');
  ws.send(JSON.stringify({ type: 'register', worker_name: 'rogue', models: reg.models, max_concurrent: reg.maxConcurrent, protocol_version: PROTOCOL_VERSION, extensions: reg.extensions }));
  await acked;
  return { ws, requests, closed };
}

/** A guess at a neighbouring id: the relay numbers its ids `req_<prefix><base36 counter>`. */
function guess(seen: string[], offset: number): string {
  const base = seen.at(-1) ?? 'req_000000001';
  const m = /^(req_[0-9a-f]{8})([0-9a-z]+)$/.exec(base);
  if (!m) return base;
  return `${m[1]}${Math.max(0, parseInt(m[2]!, 36) + offset).toString(36)}`;
}

// ---------- clients ----------

interface Answer {
  status: number;
  text: string;
  id?: string;
}

async function ask(model: string, stream: boolean, nonce: string, headers: Record<string, string> = {}): Promise<Answer> {
  const body = JSON.stringify({ model, stream, messages: [{ role: 'user', content: nonce }] });
  const res = await request(`${server.url}/v1/chat/completions`, { method: 'POST', dispatcher: agent, headers: { 'content-type': 'application/json', 'x-mock-digest': '1', ...headers }, body, bodyTimeout: 15_000, headersTimeout: 15_000 });
  return { status: res.statusCode, text: await res.body.text(), id: res.headers['x-request-id'] as string | undefined };
}

/** The honest backend's exact answer to this body, as a stream's content. */
function expected(body: string, tokens: number): string {
  return Array.from({ length: tokens }, (_, i) => (i === 0 ? `[hz] #${bodyDigest(body)} tok1` : ` tok${i + 1}`)).join('');
}

function streamContent(text: string): string {
  let out = '';
  for (const ev of text.split('\n\n')) {
    const data = ev.startsWith('data: ') ? ev.slice(6) : '';
    if (!data || data === '[DONE]') continue;
    const j = JSON.parse(data);
    assert.equal(j.error, undefined, `an error event in an honest stream: ${data}`);
    out += j.choices?.[0]?.delta?.content ?? '';
  }
  return out;
}

let run = 0;

test('a rogue worker never disturbs another worker\'s requests, and the scheduler\'s invariants hold after every event', async () => {
  await fc.assert(
    fc.asyncProperty(registration, fc.array(action, { minLength: 1, maxLength: 25 }), async (reg, actions) => {
      const n = ++run;
      // Honest streams, in flight on the honest worker before the rogue starts.
      const honest = Array.from({ length: 3 }, (_, i) => {
        const nonce = `honest ${n}.${i}`;
        const body = JSON.stringify({ model: 'honest-model', stream: true, messages: [{ role: 'user', content: nonce }] });
        return { body, answer: ask('honest-model', true, nonce, { 'x-mock-tokens': '12', 'x-mock-delay-ms': '15' }) };
      });
      await until(() => honestIds().length >= 3 * n, 'the honest streams to start', 10_000);
      const rogue = await connectRogue(reg);
      const others: Promise<Answer | string>[] = [];
      const resolveId = (r: IdRef): string => {
        if (r.kind === 'mine') return rogue.requests.length ? rogue.requests[r.k % rogue.requests.length]! : 'req_none';
        if (r.kind === 'honest') {
          const ids = honestIds();
          return ids[ids.length - 1 - (r.k % 3)] ?? 'req_none';
        }
        if (r.kind === 'guess') return guess([...rogue.requests, ...honestIds()], r.offset);
        return r.id;
      };
      for (const a of actions) {
        if (rogue.ws.readyState !== WebSocket.OPEN) break;
        switch (a.t) {
          case 'chunk':
            rogue.ws.send(JSON.stringify({ type: 'response_chunk', request_id: resolveId(a.id), chunk: a.chunk }));
            break;
          case 'complete':
            rogue.ws.send(JSON.stringify({ type: 'response_complete', request_id: resolveId(a.id), status_code: a.status, ...(a.body !== undefined ? { body: a.body } : {}), ...(a.headers ? { headers: a.headers } : {}) }));
            break;
          case 'error':
            rogue.ws.send(JSON.stringify({ type: 'error', ...(a.id ? { request_id: resolveId(a.id) } : {}), code: a.code, message: 'rogue' }));
            break;
          case 'models':
            rogue.ws.send(JSON.stringify({ type: 'models_update', models: a.models, ...(a.groups ? { slot_groups: a.groups } : {}) }));
            break;
          case 'pong':
            rogue.ws.send(JSON.stringify({ type: 'pong', current_load: a.load }));
            break;
          case 'draining':
            rogue.ws.send(JSON.stringify({ type: 'draining' }));
            break;
          case 'backend':
            rogue.ws.send(JSON.stringify({ type: 'backend_status', state: a.state, reason: 'rogue' }));
            break;
          case 'client':
            others.push(ask(a.model, a.stream, `other ${n}`).catch((e: Error) => `client error: ${e.message}`));
            break;
          case 'wait':
            await new Promise((r) => setTimeout(r, a.ms));
            break;
          case 'fatal':
            if (a.frame === 'binary' && !reg.extensions.includes('binary-frames')) rogue.ws.send(binaryFrame({ type: 'response_chunk', request_id: resolveId({ kind: 'honest', k: 0 }), chunk: 'x' }, 'chunk'));
            else if (a.frame === 'garbage') rogue.ws.send('{"type":');
            else if (a.frame === 'register') rogue.ws.send(JSON.stringify({ type: 'register', worker_name: 'again', models: ['honest-model'], max_concurrent: 9 }));
            else rogue.ws.send(JSON.stringify({ type: 'response_complete', request_id: resolveId({ kind: 'honest', k: 0 }), status_code: 42 }));
            break;
        }
      }
      rogue.ws.close();
      await rogue.closed;

      // The honest streams: whole and exact, untouched by anything the rogue said.
      for (const h of honest) {
        const a = await h.answer;
        assert.equal(a.status, 200, a.text);
        assert.ok(a.text.endsWith('data: [DONE]\n\n'), `an honest stream ended early: ${a.text.slice(-200)}`);
        assert.equal(streamContent(a.text), expected(h.body, 12));
      }
      // The rogue's own clients got an answer each (its own, relayed, or the relay's error), no 500 of ours.
      for (const o of await Promise.all(others)) {
        if (typeof o === 'string') continue; // a stream the rogue broke off mid-body
        assert.ok(!o.text.includes('internal_error'), o.text);
      }
      assert.deepEqual(violations, [], 'scheduler invariants');
      // The rogue is gone: only the honest worker remains, and it still serves.
      await until(() => server.relay.scheduler.workerCount === 1 && server.relay.inFlight === 0, 'the rogue gone and nothing in flight', 10_000);
      assert.deepEqual(server.relay.scheduler.workerList().map((w) => [w.name, w.inFlight]), [['honest', 0]]);
    }),
    { numRuns: 20 },
  );
  assert.deepEqual(logLines.filter((l) => l['level'] === 50 || l['level'] === 60), [], 'no error logged by the server');
});

/** Ids of requests the honest worker has been given, in order (from the relay's finished or dispatch log). */
function honestIds(): string[] {
  const ids: string[] = [];
  for (const [id, w] of dispatched) if (w === 'honest') ids.push(id);
  return ids;
}

const dispatched = new Map<string, string>();

test('frames around the size cap: up to --max-frame-bytes a frame is read, one byte more closes the worker with 1009', async () => {
  const CAP = 4096;
  const small = await startInProcess({ host: '127.0.0.1', port: 0, workerSecret: SECRET, maxFrameBytes: CAP }, pino({ level: 'silent' }));
  try {
    let probe = 0;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: -3, max: 3 }), fc.boolean(), async (delta, binary) => {
        const size = CAP + delta;
        const ws = new WebSocket(`${small.url.replace('http', 'ws')}/v1/worker/connect`, { headers: { 'x-worker-secret': SECRET }, perMessageDeflate: false });
        ws.on('error', () => {});
        const closed = once(ws, 'close').then(([code]) => code as number);
        await once(ws, 'open');
        ws.send(JSON.stringify({ type: 'register', worker_name: 'big', models: ['m'], max_concurrent: 1, extensions: ['binary-frames'] }));
        await once(ws, 'message');
        let frame: string | Buffer;
        if (binary) {
          const header = Buffer.from(JSON.stringify({ type: 'response_chunk', request_id: 'never-given' }));
          frame = Buffer.concat([Buffer.alloc(4), header, Buffer.alloc(size - 4 - header.length, 'a')]);
          frame.writeUInt32BE(header.length, 0);
        } else {
          const empty = JSON.stringify({ type: 'response_chunk', request_id: 'never-given', chunk: '' });
          frame = JSON.stringify({ type: 'response_chunk', request_id: 'never-given', chunk: 'a'.repeat(size - empty.length) });
        }
        assert.equal(Buffer.byteLength(frame), size);
        ws.send(frame, { binary });
        const name = `probe-${++probe}`;
        ws.send(JSON.stringify({ type: 'models_update', models: [name] }));
        if (size <= CAP) {
          await until(() => small.relay.scheduler.models().includes(name), `a ${size}-byte frame read and the next one too`, 5000);
          ws.close();
          await closed;
        } else {
          assert.equal(await closed, 1009, `a ${size}-byte frame closes the worker`);
          assert.ok(!small.relay.scheduler.models().includes(name), 'nothing after the oversized frame was read');
        }
        small.relay.scheduler.checkInvariants();
        await until(() => small.relay.scheduler.workerCount === 0, 'the worker gone', 5000);
      }),
      { numRuns: 30 },
    );
  } finally {
    await small.destroy();
  }
});
