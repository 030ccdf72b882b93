// Start-up time of modelrelay-server to /health answering: the standalone executable (npm run
// package) beside `node dist/cli/server.js` (npm run build). Run: node --import tsx bench/startup.ts [runs]
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, realpathSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RUNS = Number(process.argv[2] ?? 15);

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function once(cmd: string, args: string[]): Promise<number> {
  const port = await freePort();
  const data = mkdtempSync(join(tmpdir(), 'mr-startup-'));
  const t0 = performance.now();
  const child = spawn(cmd, [...args, '--listen', `127.0.0.1:${port}`, '--log-level', 'warn'], { env: { PATH: '', WORKER_SECRET: 'startup-bench-secret-0123', DATA_DIR: data }, stdio: 'ignore' });
  try {
    for (;;) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/health`);
        await res.arrayBuffer();
        if (res.ok) return performance.now() - t0;
      } catch {
        // not listening yet
      }
      if (child.exitCode !== null) throw new Error(`${cmd} exited with ${child.exitCode}`);
      if (performance.now() - t0 > 20_000) throw new Error(`${cmd}: no /health within 20 s`);
      await new Promise((r) => setTimeout(r, 2));
    }
  } finally {
    child.kill('SIGKILL');
    rmSync(data, { recursive: true, force: true });
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const variants: [string, string, string[]][] = [
  ['standalone dist/bin/modelrelay-server', join(ROOT, 'dist/bin/modelrelay-server'), []],
  [`node ${process.version} dist/cli/server.js`, process.execPath, [join(ROOT, 'dist/cli/server.js')]],
];
for (const [name, cmd, args] of variants) {
  if (!existsSync(cmd) || (args[0] && !existsSync(args[0]))) {
    console.log(`${name}: not built`);
    continue;
  }
  await once(cmd, args); // warm the page cache
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) times.push(await once(cmd, args));
  const size = statSync(realpathSync(cmd)).size / 1048576;
  console.log(`${name}: median ${median(times).toFixed(0)} ms to /health (min ${Math.min(...times).toFixed(0)}, max ${Math.max(...times).toFixed(0)}, ${RUNS} runs); executable ${size.toFixed(1)} MiB`);
}
