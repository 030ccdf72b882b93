// The standalone executables for tests: `npm run package` (scripts/package.mjs) builds them, or
// copies them from .cache/ when nothing changed; a test then runs its own copy from a folder of its own.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Proc } from './cluster.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BIN_DIR = join(ROOT, 'dist', 'bin');

export type Built = { ok: true; dir: string } | { ok: false; skip: string };

let built: Built | undefined;

/** Builds (or finds cached) dist/bin/; `skip` says why when a prerequisite can't be had here. */
export function ensureStandalone(): Built {
  if (built) return built;
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'package.mjs')], { cwd: ROOT, encoding: 'utf8', timeout: 15 * 60_000 });
  const said = (r.stderr ?? '').trim().split('\n');
  if (r.status === 3) return (built = { ok: false, skip: `skipped: ${said.at(-1)!.replace(/^package: unavailable: /, '')}` });
  if (r.status !== 0) throw new Error(`npm run package failed (${r.error?.message ?? `exit ${r.status}`}):\n${said.slice(-20).join('\n')}`);
  return (built = { ok: true, dir: BIN_DIR });
}

const copies: string[] = [];
/** A fresh folder holding only a copy of dist/bin/ (its links still pointing inside it). */
export function copyOfBin(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mr-bin-'));
  copies.push(dir);
  cpSync(BIN_DIR, dir, { recursive: true, verbatimSymlinks: true });
  return dir;
}
process.on('exit', () => {
  for (const d of copies) rmSync(d, { recursive: true, force: true });
});

/** Runs an executable from `dir` with `dir` as its working folder, an empty PATH and only `env`. */
export function spawnBinary(name: string, dir: string, exe: string, args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(join(dir, exe), args, { cwd: dir, env: { PATH: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Proc(name, child);
}
