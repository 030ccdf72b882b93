// The auth room on its own: secrets, the in-memory credential sets, the admin token, the failure
// limiter; and telemetry's outcome rules and windows.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { AdminToken, Auth, FailureLimiter, bearer } from '../../src/auth/index.js';
import { SqliteStore } from '../../src/store/index.js';
import { outcomeOf } from '../../src/telemetry/index.js';
import { percentiles, LatencyWindow } from '../../src/telemetry/latency-window.js';
import { BUCKET_MS, TimeSeries } from '../../src/telemetry/time-series.js';

const dir = mkdtempSync(join(tmpdir(), 'mr-auth-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('Auth', () => {
  test('client keys, worker tokens and the shared secret are checked each against its own set', () => {
    const store = new SqliteStore(join(dir, 'a'));
    const auth = new Auth({ store, workerSecret: 'shared-secret', adminToken: undefined });
    const key = auth.clientKeys!.issue('alice', 1);
    const tok = auth.workerTokens!.issue('gpu', 2);
    assert.match(key.secret, /^mr-/);
    assert.match(tok.secret, /^mrw-/);
    assert.ok(key.secret.startsWith(key.prefix) && key.prefix.length < key.secret.length / 2);
    assert.deepEqual(auth.client(`Bearer ${key.secret}`, undefined), { ok: true, key: auth.clientKeys!.verify(key.secret) });
    assert.equal(auth.client(undefined, key.secret).ok, true, 'x-api-key');
    assert.equal(auth.client('Bearer wrong', key.secret).ok, true, 'either header may carry it');
    assert.deepEqual(auth.client(undefined, undefined), { ok: false, reason: 'missing' });
    assert.deepEqual(auth.client(`Bearer ${tok.secret}`, undefined), { ok: false, reason: 'unknown' }, 'a worker token is no client key');
    assert.deepEqual(auth.worker('shared-secret'), { kind: 'shared_secret' });
    assert.deepEqual(auth.worker(tok.secret), { kind: 'worker_token', id: tok.id, name: 'gpu' });
    assert.equal(auth.worker(key.secret), undefined, 'a client key is no worker credential');
    const revoked: string[] = [];
    auth.clientKeys!.onRevoke((id) => revoked.push(id));
    assert.equal(auth.clientKeys!.revoke(key.id, 3), true);
    assert.deepEqual(revoked, [key.id]);
    assert.equal(auth.client(`Bearer ${key.secret}`, undefined).ok, false, 'revoked at once');
    assert.equal(auth.clientKeys!.revoke(key.id, 4), false);
    assert.equal(auth.stillValid({ kind: 'worker_token', id: tok.id, name: 'gpu' }), true);
    auth.workerTokens!.revoke(tok.id, 5);
    assert.equal(auth.stillValid({ kind: 'worker_token', id: tok.id, name: 'gpu' }), false);
    store.close();
    // A fresh process reads the same sets back from the store.
    const again = new Auth({ store: new SqliteStore(join(dir, 'a')), workerSecret: undefined, adminToken: undefined });
    assert.equal(again.client(`Bearer ${key.secret}`, undefined).ok, false);
    assert.equal(again.worker('shared-secret'), undefined, 'no shared secret configured');
  });

  test('the admin token: disabled, missing, wrong, ok', () => {
    assert.equal(new AdminToken(undefined).check('Bearer x'), 'disabled');
    const t = new AdminToken('the-admin-token-123');
    assert.equal(t.check(undefined), 'missing');
    assert.equal(t.check('Basic abc'), 'missing');
    assert.equal(t.check('Bearer nope'), 'wrong');
    assert.equal(t.check('bearer the-admin-token-123'), 'ok');
    assert.equal(bearer('Bearer   '), undefined);
  });

  test('the failure limiter counts per peer within a minute', () => {
    const l = new FailureLimiter(2);
    l.noteFailure('a', 0);
    assert.equal(l.retryAfter('a', 1), 0);
    l.noteFailure('a', 1000);
    assert.equal(l.retryAfter('a', 1000), 59);
    assert.equal(l.retryAfter('b', 1000), 0);
    assert.equal(l.retryAfter('a', 60_000), 0, 'the window passed');
  });
});

describe('telemetry rules', () => {
  test('outcomes', () => {
    assert.equal(outcomeOf(200, undefined), 'ok');
    assert.equal(outcomeOf(404, 'model_not_found'), 'client_error');
    assert.equal(outcomeOf(502, 'worker_lost'), 'backend_error');
    assert.equal(outcomeOf(500, undefined), 'backend_error');
    assert.equal(outcomeOf(200, 'client_disconnect'), 'cancelled');
    assert.equal(outcomeOf(503, 'queue_timeout'), 'timed_out');
    assert.equal(outcomeOf(200, 'backend_error'), 'backend_error', 'a stream that failed after its 200');
  });

  test('percentiles skip phases that never happened; the window forgets old samples', () => {
    assert.deepEqual(percentiles([NaN, 3, 1, 2]), { p50: 2, p90: 3, p99: 3 });
    assert.deepEqual(percentiles([]), { p50: null, p90: null, p99: null });
    const w = new LatencyWindow();
    w.record(0, 1, 2, 3);
    w.record(10_000, 5, NaN, 7);
    const s = w.summary(10_000, 5_000);
    assert.equal(s.samples, 1);
    assert.equal(s.first_byte.p50, null);
    assert.equal(s.total.p50, 7);
  });

  test('the time series fills buckets and reports empty ones as zero', () => {
    const ts = new TimeSeries();
    const t0 = 1_000 * BUCKET_MS;
    ts.record(t0, false, 10, 100);
    ts.record(t0 + 1, true, 0, 300);
    const pts = ts.points(t0 + 2 * BUCKET_MS, 1);
    assert.equal(pts.length, 12);
    const b = pts.find((p) => p.t === t0)!;
    assert.deepEqual([b.requests, b.errors, b.tokens, b.p50_ms], [2, 1, 10, 300]);
    assert.equal(pts.at(-1)!.requests, 0);
  });
});
