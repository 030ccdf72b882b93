// Calls to a server's admin API from tests, and a throwaway data directory per server.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServerProc } from './cluster.js';

export const ADMIN_TOKEN = 'admin-token-for-tests-0123456789';

const dirs: string[] = [];
/** A fresh folder for --data-dir; removed when the test process exits. */
export function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'mr-data-'));
  dirs.push(d);
  return d;
}
process.on('exit', () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

export interface AdminAnswer {
  status: number;
  headers: Headers;
  body: any;
}

/** An admin call; `token: null` sends no Authorization header. */
export async function admin(server: ServerProc | string, method: string, path: string, body?: unknown, token: string | null = ADMIN_TOKEN): Promise<AdminAnswer> {
  const base = typeof server === 'string' ? server : server.url;
  const headers: Record<string, string> = {};
  if (token !== null) headers['authorization'] = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  let parsed: any = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON */
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

/** Issues a client key (or a worker token) and returns its secret. */
export async function issue(server: ServerProc, kind: 'keys' | 'worker-tokens', name: string): Promise<{ id: string; secret: string }> {
  const r = await admin(server, 'POST', `/admin/${kind}`, { name });
  if (r.status !== 201) throw new Error(`POST /admin/${kind}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body as { id: string; secret: string };
}
