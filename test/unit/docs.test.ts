// Docs tested against code: the README's flag, error and metric tables must match the code's tables.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { SERVER_FLAGS } from '../../src/cli/server-flags.js';
import { WORKER_FLAGS } from '../../src/cli/worker-flags.js';
import { ERRORS } from '../../src/core/errors.js';
import { LIMITS, formatLimit } from '../../src/server/limits.js';
import type { FlagSpec } from '../../src/cli/flags.js';
import { Metrics } from '../../src/telemetry/metrics.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

function section(heading: string): string {
  const start = readme.indexOf(heading);
  assert.ok(start >= 0, `README has no '${heading}' section`);
  const next = readme.indexOf('\n#', start + heading.length);
  return readme.slice(start, next < 0 ? undefined : next);
}

function rows(text: string): string[][] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('| `'))
    .map((l) => l.split('|').slice(1, -1).map((c) => c.trim()));
}

function checkFlags(heading: string, flags: FlagSpec[]): void {
  const table = rows(section(heading));
  assert.deepEqual(table.map((r) => r[0]), flags.map((f) => `\`--${f.name}\``), `${heading}: flags differ from the code`);
  for (const [i, f] of flags.entries()) {
    const r = table[i]!;
    assert.equal(r[1], `\`${f.env}\``, `--${f.name}: env var`);
    const def = f.required ? 'required' : f.default === undefined ? '—' : `\`${String(f.default)}\``;
    assert.equal(r[2], def, `--${f.name}: default`);
  }
}

test('README server flag table matches the code', () => checkFlags('### `modelrelay-server`', SERVER_FLAGS));
test('README worker flag table matches the code', () => checkFlags('### `modelrelay-worker`', WORKER_FLAGS));

test('README error table lists every error code with its status', () => {
  const table = rows(section('### Errors'));
  const documented = new Map<string, string>();
  for (const r of table) for (const code of r[0]!.match(/`([a-z_]+)`/g) ?? []) documented.set(code.slice(1, -1), r[1]!);
  for (const [code, spec] of Object.entries(ERRORS)) {
    if (code === 'internal_error') continue; // not reachable by users
    assert.ok(documented.has(code), `error code ${code} missing from the README`);
    const status = documented.get(code)!;
    if (status !== '—') assert.ok(status.includes(String(spec.status)), `${code}: README says ${status}, code says ${spec.status}`);
  }
});

test('README metrics table lists exactly the modelrelay_ series the server exports, with their types', async () => {
  const table = rows(section('### Metrics'));
  const documented = new Map(table.map((r) => [r[0]!.replaceAll('`', ''), r[1]!]));
  const metrics = new Metrics({ queueDepths: () => new Map(), workers: () => [] });
  const exported = (await metrics.registry.getMetricsAsJSON()).filter((m) => m.name.startsWith('modelrelay_'));
  assert.deepEqual([...documented.keys()].sort(), exported.map((m) => m.name).sort());
  for (const m of exported) assert.equal(documented.get(m.name), String(m.type), `${m.name}: type`);
});

test('README limits table matches the code, and each tunable limit is a server flag with that default', () => {
  const table = section('### Limits')
    .split('\n')
    .filter((l) => l.startsWith('|') && !l.startsWith('|---') && !l.startsWith('| what '))
    .map((l) => l.split('|').slice(1, -1).map((c) => c.trim()));
  const expected = LIMITS.map((l) => [l.what, l.flag ? `\`--${l.flag}\` (${formatLimit(l.value, l.unit)})` : formatLimit(l.value, l.unit), l.refusal]);
  const render = (rows: string[][]): string => rows.map((r) => `| ${r.join(' | ')} |`).join('\n');
  assert.equal(render(table), render(expected), 'the README\'s Limits table differs from src/server/limits.ts');
  for (const l of LIMITS) {
    if (!l.flag) continue;
    const flag = SERVER_FLAGS.find((f) => f.name === l.flag);
    assert.ok(flag, `--${l.flag} is a server flag`);
    assert.equal(flag.default, l.value, `--${l.flag}: the flag's default and the limit's value agree`);
  }
});
