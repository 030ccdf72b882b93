// Runs Debian's nginx for a test: a generated config in a temporary prefix, in the foreground, on a
// free 127.0.0.1 port. Tests skip when nginx isn't installed (`.ci/run` installs it where apt works).
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, chmodSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './cluster.js';

export function findNginx(): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(':'), '/usr/sbin', '/usr/local/sbin'];
  for (const d of dirs) {
    try {
      accessSync(join(d, 'nginx'), constants.X_OK);
      return join(d, 'nginx');
    } catch {
      // not here
    }
  }
  return undefined;
}

export interface Nginx {
  port: number;
  stderr: string[];
  close(): Promise<void>;
}

/** Starts nginx with `httpBlock` (server blocks; `PORT` in it stands for the port it gets). */
export async function startNginx(bin: string, httpBlock: string): Promise<Nginx> {
  // nginx can't be told port 0: take a free one, and try again should someone grab it first.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const prefix = mkdtempSync(join(tmpdir(), 'mr-nginx-'));
    chmodSync(prefix, 0o755); // its workers run as nobody when we are root
    writeFileSync(
      join(prefix, 'nginx.conf'),
      `worker_processes 1;
daemon off;
pid ${prefix}/nginx.pid;
error_log stderr warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
${httpBlock.replaceAll('PORT', String(port))}
}
`,
    );
    const child = spawn(bin, ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-e', 'stderr'], { stdio: ['ignore', 'ignore', 'pipe'] });
    const stderr: string[] = [];
    child.stderr!.on('data', (d: Buffer) => stderr.push(...d.toString().trim().split('\n')));
    const exited = once(child, 'exit');
    const up = await Promise.race([listening(port, child), exited.then(() => false)]);
    if (up) return { port, stderr, close: () => stop(child, prefix) };
    rmSync(prefix, { recursive: true, force: true });
    if (attempt >= 3 || !stderr.some((l) => l.includes('Address already in use'))) throw new Error(`nginx did not start:\n${stderr.join('\n')}`);
  }
}

async function stop(child: ChildProcess, prefix: string): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = once(child, 'exit');
    child.kill('SIGTERM'); // nginx's fast shutdown: the master takes its workers down with it
    await exited;
  }
  rmSync(prefix, { recursive: true, force: true });
}


/** Resolves true once the port accepts connections (nginx prints nothing when it is ready). */
async function listening(port: number, child: ChildProcess): Promise<boolean> {
  const end = Date.now() + 10_000;
  while (child.exitCode === null && Date.now() < end) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}
