// The auth room on its own: secrets, the in-memory credential sets, the admin token, the failure
// limiter.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { AdminToken, Auth, FailureLimiter, bearer } from '../../src/auth/index.js';
import { SqliteStore } from '../../src/store/index.js';

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
