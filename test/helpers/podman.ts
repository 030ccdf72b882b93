// Container images for tests, with podman: no image registry is reachable from these machines, so
// the base image is made here from the libraries the standalone binary links against (ldd), and the
// Dockerfile at the root is built on it (RUNTIME_IMAGE). Both are tagged by a hash of what they
// are made of and kept between runs, so a warm run builds nothing. podman runs with a
// containers.conf of our own (CONTAINERS_CONF) for this machine's sandbox: no default ulimits, and
// the runc runtime (crun fails on its cgroups).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN_DIR } from './standalone.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CONTAINERS_CONF = join(ROOT, '.cache', 'podman', 'containers.conf');
const CONF = CONTAINERS_CONF;
export const BASE_REPO = 'localhost/modelrelay-test-base';
export const IMAGE_REPO = 'localhost/modelrelay-test';

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs podman with our containers.conf; its systemd-timer noise (no systemd here) is dropped. */
export function podman(args: string[], opts: { input?: string | Buffer; timeoutMs?: number } = {}): Run {
  const r = spawnSync('podman', args, {
    env: { ...process.env, CONTAINERS_CONF: CONF },
    input: opts.input,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 120_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  const stderr = (r.stderr ?? '').split('\n').filter((l) => !/unable to get systemd connection/.test(l)).join('\n').trim();
  return { status: r.status, stdout: (r.stdout ?? '').trim(), stderr: r.error ? `${r.error.message}\n${stderr}` : stderr };
}

export function mustPodman(args: string[], opts: { input?: string | Buffer; timeoutMs?: number } = {}): string {
  const r = podman(args, opts);
  if (r.status !== 0) throw new Error(`podman ${args.join(' ')} failed (${r.status}):\n${r.stderr}\n${r.stdout}`.slice(0, 4000));
  return r.stdout;
}

/** Why podman can't run containers here, or undefined when it can. */
export function podmanProblem(): string | undefined {
  mkdirSync(dirname(CONF), { recursive: true });
  writeFileSync(CONF, '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n');
  const v = spawnSync('podman', ['--version'], { encoding: 'utf8' });
  if (v.error || v.status !== 0) return 'podman is not installed (apt-get install podman runc)';
  if (!existsSync('/usr/sbin/runc') && spawnSync('runc', ['--version']).status !== 0) return 'runc is not installed (apt-get install runc)';
  const info = podman(['info', '--format', '{{.Host.OCIRuntime.Name}}'], { timeoutMs: 60_000 });
  if (info.status !== 0) return `podman cannot run here: ${info.stderr.split('\n').at(-1)}`;
  return undefined;
}

const hash = (...parts: (string | Buffer)[]): string => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex').slice(0, 12);
};

/** The shared libraries a file links against, as ldd resolves them on this machine. */
function libraries(file: string): string[] {
  const r = spawnSync('ldd', [file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ldd ${file} failed: ${r.stderr}`);
  return [...r.stdout.matchAll(/(?:=> )?(\/\S+) \(0x/g)].map((m) => m[1]!);
}

/** A base image holding only the binary's libraries (and an empty /tmp): about 5 MB. */
export function baseImage(): string {
  const libs = [...new Set([...libraries(join(BIN_DIR, 'modelrelay')), ...libraries(join(BIN_DIR, 'better_sqlite3.node'))])].sort();
  const tag = `${BASE_REPO}:${hash(...libs.flatMap((l) => [l, readFileSync(l)]))}`;
  if (podman(['image', 'exists', tag]).status === 0) return tag;
  const rootfs = mkdtempSync(join(tmpdir(), 'mr-rootfs-'));
  try {
    for (const lib of libs) {
      mkdirSync(join(rootfs, dirname(lib)), { recursive: true });
      cpSync(lib, join(rootfs, lib), { dereference: true });
    }
    mkdirSync(join(rootfs, 'tmp'));
    chmodSync(join(rootfs, 'tmp'), 0o1777);
    const tar = spawnSync('tar', ['-C', rootfs, '-c', '.'], { maxBuffer: 256 * 1024 * 1024 });
    if (tar.status !== 0) throw new Error(`tar failed: ${tar.stderr}`);
    mustPodman(['import', '-', tag], { input: tar.stdout });
  } finally {
    rmSync(rootfs, { recursive: true, force: true });
  }
  return tag;
}

/** The image from the root Dockerfile on `base`, rebuilt only when the binary or the Dockerfile changed. */
export function projectImage(base: string): string {
  const inputs = ['Dockerfile', '.dockerignore', 'dist/bin/modelrelay', 'dist/bin/better_sqlite3.node', 'extras/container/data/README'];
  const tag = `${IMAGE_REPO}:${hash(base, ...inputs.flatMap((f) => [f, readFileSync(join(ROOT, f))]))}`;
  if (podman(['image', 'exists', tag]).status === 0) return tag;
  mustPodman(['build', '--network=host', '--format', 'docker', '--build-arg', `RUNTIME_IMAGE=${base}`, '-t', tag, ROOT], { timeoutMs: 600_000 });
  // Keep one image of each kind: each holds a 100 MiB binary.
  for (const repo of [IMAGE_REPO, BASE_REPO]) {
    const keep = repo === IMAGE_REPO ? tag : base;
    for (const old of mustPodman(['images', '--format', '{{.Repository}}:{{.Tag}}', repo]).split('\n').filter(Boolean)) {
      if (old !== keep) podman(['rmi', old]);
    }
  }
  return tag;
}
