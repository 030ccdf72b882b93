// The SQLite store: credentials and usage survive a reopen, migrations are versioned, and a file it
// can't trust stops it with a message naming the file.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import BetterSqlite from 'better-sqlite3';
import { sqliteOptions } from '../../src/store/native-addon.js';
import { SqliteStore, STORE_FILE, StoreOpenError, UsageBatcher, defaultDataDir } from '../../src/store/index.js';
import { APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION } from '../../src/store/migrations.js';

/** A raw database, with the addon the store itself would load (another Node's, under test:node24). */
function Database(file: string): BetterSqlite.Database {
  return new BetterSqlite(file, sqliteOptions());
}

const root = mkdtempSync(join(tmpdir(), 'mr-store-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = (): string => join(root, `d${++n}`, 'nested');

const rec = (id: string, kind: 'client_key' | 'worker_token' = 'client_key') => ({
  id,
  kind,
  name: `name-${id}`,
  prefix: 'mr-abc',
  hash: `hash-${id}`,
  createdAt: 1000 + n,
  revokedAt: undefined,
  policy: {},
});

describe('SqliteStore', () => {
  test('creates the folder owner-only, and credentials and revocations survive a reopen', () => {
    const dir = freshDir();
    const s = new SqliteStore(dir);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(join(dir, STORE_FILE)).mode & 0o777, 0o600);
    s.addCredential(rec('k1'));
    s.addCredential(rec('k2'));
    s.addCredential(rec('t1', 'worker_token'));
    assert.equal(s.revokeCredential('client_key', 'k1', 5000), true);
    assert.equal(s.revokeCredential('client_key', 'k1', 6000), false, 'already revoked');
    assert.equal(s.revokeCredential('client_key', 't1', 6000), false, 'a worker token is not a client key');
    s.close();
    const again = new SqliteStore(dir);
    const keys = again.credentials('client_key');
    assert.deepEqual(keys.map((k) => [k.id, k.revokedAt]), [['k1', 5000], ['k2', undefined]]);
    assert.deepEqual(again.credentials('worker_token').map((k) => k.id), ['t1']);
    again.close();
  });

  test("a key's policy is stored and survives a reopen; a version-1 store migrates with empty policies", () => {
    const dir = freshDir();
    const s = new SqliteStore(dir);
    s.addCredential({ ...rec('k1'), policy: { priority: 'high', max_concurrent: 2 } });
    assert.equal(s.setPolicy('client_key', 'k1', { requests_per_minute: 5 }), true);
    assert.equal(s.setPolicy('client_key', 'nope', {}), false);
    s.close();
    const again = new SqliteStore(dir);
    assert.deepEqual(again.credentials('client_key')[0]!.policy, { requests_per_minute: 5 });
    again.close();

    // A store written by the first schema: its keys come back with no policy.
    const old = freshDir();
    mkdirSync(old, { recursive: true });
    const db = Database(join(old, STORE_FILE));
    db.exec(MIGRATIONS[0]!);
    db.pragma(`application_id = ${APPLICATION_ID}`);
    db.pragma('user_version = 1');
    db.prepare("INSERT INTO credentials (id, kind, name, prefix, hash, created_at) VALUES ('k0', 'client_key', 'old', 'mr-x', 'h0', 1)").run();
    db.close();
    const migrated = new SqliteStore(old);
    assert.deepEqual(migrated.credentials('client_key').map((c) => [c.id, c.policy]), [['k0', {}]]);
    migrated.close();
  });

  test('usage deltas add up across batches and reopen', () => {
    const dir = freshDir();
    const s = new SqliteStore(dir);
    s.addCredential(rec('k1'));
    const batcher = new UsageBatcher(s, (e) => assert.fail(e), 60_000);
    batcher.record('k1', 'ok', 10, 5, 100);
    batcher.record('k1', 'cancelled', 3, 0, 200);
    batcher.flush();
    batcher.record('k1', 'ok', 1, 1, 150);
    assert.deepEqual(batcher.totals().get('k1'), {
      requests: { ok: 2, client_error: 0, backend_error: 0, cancelled: 1, timed_out: 0 },
      promptTokens: 14,
      completionTokens: 6,
      lastUsedAt: 200,
    });
    batcher.close();
    s.close();
    assert.equal(new SqliteStore(dir).usage().get('k1')?.requests.ok, 2);
  });

  test('a corrupt file stops the open with a message naming it', () => {
    const dir = freshDir();
    new SqliteStore(dir).close();
    const file = join(dir, STORE_FILE);
    rmSync(`${file}-wal`, { force: true });
    rmSync(`${file}-shm`, { force: true });
    writeFileSync(file, 'this is not a database, just some text that is long enough to look like a header......');
    assert.throws(() => new SqliteStore(dir), (e: Error) => e instanceof StoreOpenError && e.message.includes(file) && /not a database/.test(e.message));
  });

  test("another version's schema, or another program's database, is refused", () => {
    const dir = freshDir();
    new SqliteStore(dir).close();
    const file = join(dir, STORE_FILE);
    const db = Database(file);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    assert.throws(() => new SqliteStore(dir), (e: Error) => e instanceof StoreOpenError && e.message.includes(file) && /newer ModelRelay/.test(e.message));

    const alien = freshDir();
    new SqliteStore(alien).close();
    for (const suffix of ['', '-wal', '-shm']) rmSync(join(alien, STORE_FILE + suffix), { force: true });
    const d = Database(join(alien, STORE_FILE));
    d.exec('CREATE TABLE notes (x TEXT)');
    d.close();
    assert.throws(() => new SqliteStore(alien), /not a ModelRelay store/);
  });

  test('a data dir that is a file is refused with its name', () => {
    const file = join(root, 'plain-file');
    writeFileSync(file, 'x');
    assert.throws(() => new SqliteStore(file), (e: Error) => e instanceof StoreOpenError && e.message.includes(file));
  });
});

test('defaultDataDir follows each platform', () => {
  assert.equal(defaultDataDir({ XDG_DATA_HOME: '/x/data' }, 'linux'), '/x/data/modelrelay');
  assert.match(defaultDataDir({}, 'linux'), /\.local\/share\/modelrelay$/);
  assert.match(defaultDataDir({}, 'darwin'), /Library\/Application Support\/modelrelay$/);
  assert.match(defaultDataDir({ APPDATA: 'C:\\Users\\u\\AppData\\Roaming' }, 'win32'), /modelrelay$/);
});
