// The valid credentials of one kind (client keys, or worker tokens), held in memory so that checking
// one costs a hash and a map lookup, never a database round trip. The store is written first; the
// in-memory set changes only once the store has the change, so memory never claims what disk lost.
import { timingSafeEqual } from 'node:crypto';
import type { CredentialKind, CredentialRecord, KeyPolicy, Store } from '../store/index.js';
import { hashSecret, newSecret } from './secrets.js';

export interface Credential {
  id: string;
  name: string;
  prefix: string;
  createdAt: number;
  /** Read on every request: replaced (never mutated) by setPolicy, so a request sees one version. */
  policy: KeyPolicy;
}

export interface IssuedCredential extends Credential {
  secret: string;
}

export class CredentialSet {
  /** hash (hex) → credential, valid ones only. */
  private readonly byHash = new Map<string, Credential & { digest: Buffer }>();
  private readonly byId = new Map<string, string>();
  private readonly revokeListeners: ((id: string) => void)[] = [];

  constructor(
    private readonly store: Store,
    readonly kind: CredentialKind,
  ) {
    for (const r of store.credentials(kind)) if (r.revokedAt === undefined) this.remember(r);
  }

  get size(): number {
    return this.byHash.size;
  }

  /** The credential this secret is, or undefined. */
  verify(secret: string): Credential | undefined {
    const hash = hashSecret(secret);
    const found = this.byHash.get(hash);
    // The map finds it by hash; the final word is a constant-time comparison of the digests.
    if (!found || !timingSafeEqual(Buffer.from(hash, 'hex'), found.digest)) return undefined;
    return found;
  }

  issue(name: string, now: number, policy: KeyPolicy = {}): IssuedCredential {
    const s = newSecret(this.kind === 'client_key' ? 'mr' : 'mrw');
    const rec: CredentialRecord = { id: s.id, kind: this.kind, name, prefix: s.prefix, hash: s.hash, createdAt: now, revokedAt: undefined, policy };
    this.store.addCredential(rec);
    const cred = this.remember(rec);
    return { id: cred.id, name: cred.name, prefix: cred.prefix, createdAt: cred.createdAt, policy: cred.policy, secret: s.secret };
  }

  /** The valid credential with this id, or undefined. */
  get(id: string): Credential | undefined {
    const hash = this.byId.get(id);
    return hash === undefined ? undefined : this.byHash.get(hash);
  }

  /** Replaces a key's policy (store first); the next request with it sees the new one. */
  setPolicy(id: string, policy: KeyPolicy): Credential | undefined {
    const hash = this.byId.get(id);
    const c = hash === undefined ? undefined : this.byHash.get(hash);
    if (!c || !this.store.setPolicy(this.kind, id, policy)) return undefined;
    c.policy = policy;
    return c;
  }

  /** False if no valid credential has this id. Listeners run before it returns. */
  revoke(id: string, now: number): boolean {
    if (!this.store.revokeCredential(this.kind, id, now)) return false;
    const hash = this.byId.get(id);
    if (hash !== undefined) this.byHash.delete(hash);
    this.byId.delete(id);
    for (const l of this.revokeListeners) l(id);
    return true;
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  onRevoke(listener: (id: string) => void): void {
    this.revokeListeners.push(listener);
  }

  list(): Credential[] {
    return [...this.byHash.values()].map(({ id, name, prefix, createdAt, policy }) => ({ id, name, prefix, createdAt, policy })).sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
  }

  private remember(r: CredentialRecord): Credential & { digest: Buffer } {
    const c = { id: r.id, name: r.name, prefix: r.prefix, createdAt: r.createdAt, policy: r.policy ?? {}, digest: Buffer.from(r.hash, 'hex') };
    this.byHash.set(r.hash, c);
    this.byId.set(r.id, r.hash);
    return c;
  }
}
