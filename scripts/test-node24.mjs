#!/usr/bin/env node
// npm run test:node24: the suite's core on Node 24, the line users run, beside `npm test` on the
// machine's Node 20. Node 24 is the registry's node-<os>-<arch> package and better-sqlite3's addon is
// compiled for it, both cached in .cache/ by scripts/package.mjs --runtime. Every test process and
// every server, worker and backend it starts then runs on that Node (they spawn process.execPath).
//
// Not every file: the ones that test the machine's tools (nginx, podman, chromium, systemd) or the
// shipping paths, which carry their own Node, run once, in `npm test`; this keeps CI well under
// ten minutes. Exit code 3 from package.mjs (no Node 24 to be had) skips with one line.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SKIP = new Set(['dashboard', 'reverse-proxy', 'llama', 'llama-health', 'cache-routing']);

const rt = spawnSync(process.execPath, ['scripts/package.mjs', '--runtime'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
if (rt.status === 3) {
  console.log('# test:node24 skipped: no Node 24 from the npm registry (see above)');
  process.exit(0);
}
if (rt.status !== 0) process.exit(rt.status ?? 1);
const { node, addon, version } = JSON.parse(rt.stdout.trim().split('\n').at(-1));

const files = (dir) =>
  readdirSync(new URL(`../test/${dir}/`, import.meta.url))
    .filter((f) => f.endsWith('.test.ts') && !SKIP.has(f.replace(/\.test\.ts$/, '')))
    .map((f) => `test/${dir}/${f}`);
const args = ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', '--test-timeout=300000', ...files('unit'), ...files('integration')];
console.log(`# test:node24 on Node ${version} (${node})`);
const r = spawnSync(node, args, { cwd: ROOT, stdio: 'inherit', env: { ...process.env, MODELRELAY_SQLITE_ADDON: addon } });
process.exit(r.status ?? 1);
