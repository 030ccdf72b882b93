// The store's schema, as numbered steps. The file's `user_version` says how many have run; a start
// runs the missing ones in one transaction, and refuses a file written by a newer build.

export const APPLICATION_ID = 0x4d52_6c79; // "MRly": marks the file as ours

export const MIGRATIONS: readonly string[] = [
  // 1: credentials (client keys and worker tokens, as hashes) and usage per key
  `CREATE TABLE credentials (
     id TEXT PRIMARY KEY,
     kind TEXT NOT NULL CHECK (kind IN ('client_key', 'worker_token')),
     name TEXT NOT NULL,
     prefix TEXT NOT NULL,
     hash TEXT NOT NULL UNIQUE,
     created_at INTEGER NOT NULL,
     revoked_at INTEGER
   );
   CREATE TABLE key_usage (
     key_id TEXT PRIMARY KEY REFERENCES credentials(id),
     ok INTEGER NOT NULL DEFAULT 0,
     client_error INTEGER NOT NULL DEFAULT 0,
     backend_error INTEGER NOT NULL DEFAULT 0,
     cancelled INTEGER NOT NULL DEFAULT 0,
     timed_out INTEGER NOT NULL DEFAULT 0,
     prompt_tokens INTEGER NOT NULL DEFAULT 0,
     completion_tokens INTEGER NOT NULL DEFAULT 0,
     last_used_at INTEGER
   );`,
  // 2: a client key's policy (priority, limits), as one JSON object
  `ALTER TABLE credentials ADD COLUMN policy TEXT NOT NULL DEFAULT '{}';`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;
