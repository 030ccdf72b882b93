// Saturated non-streaming load from `wrk` (apt install wrk), a C load generator: one thread uses a
// fraction of a core where our Node client uses most of one, so the relay, like the backend, gets the
// CPU a real client on another machine would leave it. Falls back to the Node client when missing.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BODY, HEADERS, PATH, type LoadResult } from './http-load.js';
import { OUT_DIR } from './procs.js';

let available: boolean | undefined;

export function hasWrk(): boolean {
  available ??= spawnSync('wrk', ['--version'], { encoding: 'utf8' }).error === undefined;
  return available;
}

function script(body: string): string {
  const file = join(OUT_DIR, body === BODY ? 'wrk-post.lua' : 'wrk-post-custom.lua');
  mkdirSync(OUT_DIR, { recursive: true });
  const lines = ['wrk.method = "POST"', `wrk.body = ${JSON.stringify(body)}`];
  for (const [k, v] of Object.entries(HEADERS)) lines.push(`wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`);
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

/** `connections` connections back to back for `secs` whole seconds, from one wrk thread. */
export async function wrkClosedLoop(origin: string, connections: number, secs: number, body = BODY): Promise<LoadResult> {
  const args = ['-t', '1', '-c', String(connections), '-d', `${Math.max(1, Math.round(secs))}s`, '-s', script(body), `${origin}${PATH}`];
  const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  const m = /(\d+) requests in ([\d.]+)(us|ms|s|m)\b/.exec(out);
  if (code !== 0 || !m) throw new Error(`wrk failed (exit ${code}): ${out.trim()}`);
  const scale = { us: 1e-3, ms: 1, s: 1000, m: 60_000 }[m[3] as 'us' | 'ms' | 's' | 'm'];
  const num = (re: RegExp): number => Number(re.exec(out)?.[1] ?? 0);
  const sockErr = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = num(/Non-2xx or 3xx responses: (\d+)/) + (sockErr ? sockErr.slice(1).reduce((a, x) => a + Number(x), 0) : 0);
  return { latencies: new Float64Array(0), completed: Number(m[1]), errors, elapsedMs: Number(m[2]) * scale };
}
