// extras/systemd: the server unit and the worker template pass `systemd-analyze verify` without a
// single warning, in a root of their own (the units installed where the README says, the
// executables and env files where the units expect them, the host's own system units beside).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SERVER_FLAGS } from '../../src/cli/server-flags.js';
import { WORKER_FLAGS } from '../../src/cli/worker-flags.js';

const EXTRAS = fileURLToPath(new URL('../../extras/systemd/', import.meta.url));
const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
const skip = analyze.status === 0 ? false : 'skipped: systemd-analyze is not installed (apt-get install systemd)';
if (skip) console.log(`# systemd units ${skip}`);

const root = mkdtempSync(join(tmpdir(), 'mr-systemd-'));
after(() => rmSync(root, { recursive: true, force: true }));

test('the units verify cleanly: modelrelay-server and modelrelay-worker@gpu0', { skip }, () => {
  for (const d of ['etc/systemd/system', 'opt/modelrelay', 'etc/modelrelay', 'usr/lib/systemd', 'bin']) mkdirSync(join(root, d), { recursive: true });
  cpSync('/usr/lib/systemd/system', join(root, 'usr/lib/systemd/system'), { recursive: true });
  cpSync('/bin/kill', join(root, 'bin/kill'));
  for (const unit of ['modelrelay-server.service', 'modelrelay-worker@.service']) cpSync(join(EXTRAS, unit), join(root, 'etc/systemd/system', unit));
  for (const cmd of ['modelrelay-server', 'modelrelay-worker']) {
    writeFileSync(join(root, 'opt/modelrelay', cmd), '#!/bin/sh\n');
    chmodSync(join(root, 'opt/modelrelay', cmd), 0o755);
  }
  cpSync(join(EXTRAS, 'server.env'), join(root, 'etc/modelrelay/server.env'));
  cpSync(join(EXTRAS, 'worker.env'), join(root, 'etc/modelrelay/worker-gpu0.env'));
  writeFileSync(join(root, 'etc/modelrelay/worker-secret'), 'x'.repeat(32));
  const r = spawnSync('systemd-analyze', [`--root=${root}`, 'verify', 'modelrelay-server.service', 'modelrelay-worker@gpu0.service'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(`${r.stdout}${r.stderr}`.trim(), '', 'no warnings');
});

test('the env files set only variables the commands read', () => {
  for (const [file, flags] of [['server.env', SERVER_FLAGS], ['worker.env', WORKER_FLAGS]] as const) {
    const known = new Set(flags.map((f) => f.env));
    const vars = [...readFileSync(join(EXTRAS, file), 'utf8').matchAll(/^#?([A-Z_]+)=/gm)].map((m) => m[1]!);
    assert.ok(vars.length > 3, file);
    assert.deepEqual(vars.filter((v) => !known.has(v)), [], `${file} names variables no flag reads`);
  }
});
