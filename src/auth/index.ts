// Authentication, in one place the edges call: client API keys (inference), worker credentials (the
// shared secret or a worker token) and the admin token. Each kind is checked only against its own
// set, so a client key never opens the worker door and a worker token never buys inference.
import type { Store } from '../store/index.js';
import { AdminToken, bearer } from './admin-token.js';
import { type Credential, CredentialSet } from './credential-set.js';
import { digest, sameSecret } from './secrets.js';

export { AdminToken, bearer, type AdminVerdict } from './admin-token.js';
export { CredentialSet, type Credential, type IssuedCredential } from './credential-set.js';
export { FailureLimiter } from './failure-limiter.js';

export type WorkerCredential = { kind: 'shared_secret' } | { kind: 'worker_token'; id: string; name: string };

export type ClientAuth = { ok: true; key: Credential } | { ok: false; reason: 'missing' | 'unknown' };

export interface AuthOptions {
  /** Needed for client keys and worker tokens; without it only the shared secret exists. */
  store: Store | undefined;
  workerSecret: string | undefined;
  adminToken: string | undefined;
}

export class Auth {
  readonly admin: AdminToken;
  readonly clientKeys: CredentialSet | undefined;
  readonly workerTokens: CredentialSet | undefined;
  private readonly secretDigest: Buffer | undefined;

  constructor(opts: AuthOptions) {
    this.admin = new AdminToken(opts.adminToken);
    this.clientKeys = opts.store ? new CredentialSet(opts.store, 'client_key') : undefined;
    this.workerTokens = opts.store ? new CredentialSet(opts.store, 'worker_token') : undefined;
    this.secretDigest = opts.workerSecret ? digest(opts.workerSecret) : undefined;
  }

  /** A client key from `Authorization: Bearer …` or `x-api-key` (what the Anthropic SDK sends). */
  client(authorization: string | undefined, xApiKey: string | string[] | undefined): ClientAuth {
    const fromBearer = bearer(authorization);
    const fromHeader = typeof xApiKey === 'string' && xApiKey.length > 0 ? xApiKey.trim() : undefined;
    if (fromBearer === undefined && fromHeader === undefined) return { ok: false, reason: 'missing' };
    const key = (fromBearer !== undefined ? this.clientKeys?.verify(fromBearer) : undefined) ?? (fromHeader !== undefined ? this.clientKeys?.verify(fromHeader) : undefined);
    return key ? { ok: true, key } : { ok: false, reason: 'unknown' };
  }

  /** What a worker's `X-Worker-Secret` is: the shared secret, a valid worker token, or nothing. */
  worker(given: string): WorkerCredential | undefined {
    if (this.secretDigest && sameSecret(given, this.secretDigest)) return { kind: 'shared_secret' };
    const token = this.workerTokens?.verify(given);
    return token ? { kind: 'worker_token', id: token.id, name: token.name } : undefined;
  }

  /** Still valid (a token may have been revoked between the upgrade and the register). */
  stillValid(cred: WorkerCredential): boolean {
    return cred.kind === 'shared_secret' || (this.workerTokens?.has(cred.id) ?? false);
  }
}
