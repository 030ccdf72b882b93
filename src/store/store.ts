// What the server keeps on disk: client API keys, worker tokens (both only as hashes) and usage per
// key. A small interface, so that a store shared by several servers can take SQLite's place later.

/** A client API key or a worker token: the two never stand in for each other. */
export type CredentialKind = 'client_key' | 'worker_token';

export interface CredentialRecord {
  id: string;
  kind: CredentialKind;
  name: string;
  /** The first characters of the secret, shown so an operator can tell keys apart. */
  prefix: string;
  /** SHA-256 of the secret, hex. The secret itself is never stored. */
  hash: string;
  createdAt: number;
  /** Unix ms; undefined while the credential is valid. */
  revokedAt: number | undefined;
  /** What a client key may do (priority, limits); empty for worker tokens. */
  policy: KeyPolicy;
}

/** A client key's scheduling policy. Every field optional: absent means the default (normal
 * priority, no limit). Kept as one JSON value so later fields need no migration. */
export interface KeyPolicy {
  priority?: 'high' | 'normal' | 'low';
  /** In-flight requests at once; more wait in the queue (not refused). */
  max_concurrent?: number;
  /** Over these in the last minute: 429 with Retry-After. */
  requests_per_minute?: number;
  tokens_per_minute?: number;
  /** The model and alias names the key may ask for; absent = any. */
  models?: string[];
}

/** Outcomes a finished request is counted under. */
export const OUTCOMES = ['ok', 'client_error', 'backend_error', 'cancelled', 'timed_out'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export interface KeyUsage {
  requests: Record<Outcome, number>;
  promptTokens: number;
  completionTokens: number;
  /** Unix ms, undefined if never used. */
  lastUsedAt: number | undefined;
}

/** What happened to one key since the last write; added to the stored totals. */
export interface UsageDelta extends KeyUsage {
  keyId: string;
}

export interface Store {
  /** Where the data lives, for messages (a file path for SQLite). */
  readonly location: string;
  /** Every credential of a kind, revoked ones included (so a revoked secret stays refused). */
  credentials(kind: CredentialKind): CredentialRecord[];
  addCredential(rec: CredentialRecord): void;
  /** Replaces a valid credential's policy; false if no valid credential of that kind has the id. */
  setPolicy(kind: CredentialKind, id: string, policy: KeyPolicy): boolean;
  /** Marks it revoked; false if no valid credential of that kind has the id. */
  revokeCredential(kind: CredentialKind, id: string, at: number): boolean;
  /** Adds the deltas to the stored totals, all or none. */
  addUsage(deltas: UsageDelta[]): void;
  usage(): Map<string, KeyUsage>;
  close(): void;
}

export function emptyUsage(): KeyUsage {
  return { requests: { ok: 0, client_error: 0, backend_error: 0, cancelled: 0, timed_out: 0 }, promptTokens: 0, completionTokens: 0, lastUsedAt: undefined };
}

/** A store could not be opened: the server refuses to start rather than lose keys. */
export class StoreOpenError extends Error {}
