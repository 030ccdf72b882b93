// The Store on an embedded SQLite file (better-sqlite3, WAL). The only module that knows SQLite.
// Opening checks everything up front (permissions, a corrupt file, another build's schema) and
// fails with the file's name, so a server never starts on a store it might lose keys from.
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { sqliteOptions } from './native-addon.js';
import { APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION } from './migrations.js';
import { type CredentialKind, type CredentialRecord, type KeyPolicy, type KeyUsage, type Store, type UsageDelta, StoreOpenError } from './store.js';

export const STORE_FILE = 'modelrelay.db';

interface CredentialRow {
  id: string;
  kind: CredentialKind;
  name: string;
  prefix: string;
  hash: string;
  created_at: number;
  revoked_at: number | null;
  policy: string;
}

interface UsageRow {
  key_id: string;
  ok: number;
  client_error: number;
  backend_error: number;
  cancelled: number;
  timed_out: number;
  prompt_tokens: number;
  completion_tokens: number;
  last_used_at: number | null;
}

export class SqliteStore implements Store {
  readonly location: string;
  private readonly db: Database.Database;
  private readonly stmts;

  /** Opens (creating if needed, owner-only) `dataDir/modelrelay.db`; throws StoreOpenError. */
  constructor(dataDir: string) {
    this.location = join(dataDir, STORE_FILE);
    let db: Database.Database | undefined;
    try {
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      db = new Database(this.location, sqliteOptions());
      chmodSync(this.location, 0o600);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('busy_timeout = 5000');
      db.pragma('foreign_keys = ON');
      migrate(db);
    } catch (err) {
      db?.close();
      if (err instanceof StoreOpenError) throw new StoreOpenError(`cannot use the store ${this.location}: ${err.message}`);
      throw new StoreOpenError(`cannot open the store ${this.location}: ${(err as Error).message}`);
    }
    this.db = db;
    this.stmts = {
      credentials: db.prepare<[CredentialKind], CredentialRow>('SELECT * FROM credentials WHERE kind = ? ORDER BY created_at, id'),
      add: db.prepare('INSERT INTO credentials (id, kind, name, prefix, hash, created_at, revoked_at, policy) VALUES (@id, @kind, @name, @prefix, @hash, @createdAt, NULL, @policy)'),
      setPolicy: db.prepare('UPDATE credentials SET policy = ? WHERE kind = ? AND id = ? AND revoked_at IS NULL'),
      revoke: db.prepare('UPDATE credentials SET revoked_at = ? WHERE kind = ? AND id = ? AND revoked_at IS NULL'),
      usage: db.prepare<[], UsageRow>('SELECT * FROM key_usage'),
      addUsage: db.prepare(
        `INSERT INTO key_usage (key_id, ok, client_error, backend_error, cancelled, timed_out, prompt_tokens, completion_tokens, last_used_at)
         VALUES (@keyId, @ok, @client_error, @backend_error, @cancelled, @timed_out, @promptTokens, @completionTokens, @lastUsedAt)
         ON CONFLICT (key_id) DO UPDATE SET
           ok = ok + excluded.ok, client_error = client_error + excluded.client_error,
           backend_error = backend_error + excluded.backend_error, cancelled = cancelled + excluded.cancelled,
           timed_out = timed_out + excluded.timed_out, prompt_tokens = prompt_tokens + excluded.prompt_tokens,
           completion_tokens = completion_tokens + excluded.completion_tokens,
           last_used_at = max(coalesce(last_used_at, 0), coalesce(excluded.last_used_at, 0))`,
      ),
    };
  }

  credentials(kind: CredentialKind): CredentialRecord[] {
    return this.stmts.credentials.all(kind).map((r) => ({
      id: r.id,
      kind: r.kind,
      name: r.name,
      prefix: r.prefix,
      hash: r.hash,
      createdAt: r.created_at,
      revokedAt: r.revoked_at ?? undefined,
      policy: parsePolicy(r.policy),
    }));
  }

  addCredential(rec: CredentialRecord): void {
    this.stmts.add.run({ id: rec.id, kind: rec.kind, name: rec.name, prefix: rec.prefix, hash: rec.hash, createdAt: rec.createdAt, policy: JSON.stringify(rec.policy) });
  }

  setPolicy(kind: CredentialKind, id: string, policy: KeyPolicy): boolean {
    return this.stmts.setPolicy.run(JSON.stringify(policy), kind, id).changes > 0;
  }

  revokeCredential(kind: CredentialKind, id: string, at: number): boolean {
    return this.stmts.revoke.run(at, kind, id).changes > 0;
  }

  addUsage(deltas: UsageDelta[]): void {
    const run = this.db.transaction((rows: UsageDelta[]) => {
      for (const d of rows) {
        this.stmts.addUsage.run({ keyId: d.keyId, ...d.requests, promptTokens: d.promptTokens, completionTokens: d.completionTokens, lastUsedAt: d.lastUsedAt ?? null });
      }
    });
    run(deltas);
  }

  usage(): Map<string, KeyUsage> {
    const out = new Map<string, KeyUsage>();
    for (const r of this.stmts.usage.all()) {
      out.set(r.key_id, {
        requests: { ok: r.ok, client_error: r.client_error, backend_error: r.backend_error, cancelled: r.cancelled, timed_out: r.timed_out },
        promptTokens: r.prompt_tokens,
        completionTokens: r.completion_tokens,
        lastUsedAt: r.last_used_at || undefined,
      });
    }
    return out;
  }

  close(): void {
    this.db.close();
  }
}

function parsePolicy(text: string): KeyPolicy {
  try {
    const v = JSON.parse(text) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as KeyPolicy) : {};
  } catch {
    return {};
  }
}

function migrate(db: Database.Database): void {
  const appId = db.pragma('application_id', { simple: true }) as number;
  const version = db.pragma('user_version', { simple: true }) as number;
  const hasTables = (db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number }).n > 0;
  if (appId !== APPLICATION_ID && (appId !== 0 || hasTables)) {
    throw new StoreOpenError('the file is an SQLite database, but not a ModelRelay store');
  }
  if (version > SCHEMA_VERSION) {
    throw new StoreOpenError(`its schema is version ${version}, written by a newer ModelRelay; this build knows up to version ${SCHEMA_VERSION}`);
  }
  if (version === SCHEMA_VERSION) return;
  db.transaction(() => {
    for (let v = version; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]!);
    db.pragma(`application_id = ${APPLICATION_ID}`);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  })();
}
