// Docs tested against code: the README's flag tables must match the flag specs, its error table must
// list exactly the error codes the code can emit (server and worker) with their statuses, and its
// metric table the series the server exports.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { SERVER_FLAGS } from '../../src/cli/server-flags.js';
import { WORKER_FLAGS } from '../../src/cli/worker-flags.js';
import { ERRORS } from '../../src/core/errors.js';
import { RequestErrorCode } from '../../src/protocol/index.js';
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

// ---------- error codes ----------

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));
/** Rooms of src that are test tools, not the relay: the simulated backend and the llama launcher. */
const TOOLS = ['mock-backend/', 'llama/'];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/**
 * Every error code the shipped code can put in an answer: catalogue codes that some module uses
 * (the catalogue file itself doesn't count), codes written as literals into an error body
 * (`code: 'x'` or `code: cond ? 'x' : 'y'`: the worker's backend failures, the worker gateway's
 * refusals), and the worker's request-error refusals (a base-protocol server gets them as a 503).
 */
function emittedCodes(): Map<string, string> {
  const where = new Map<string, string>();
  const texts = sources(SRC)
    .map((f) => relative(SRC, f))
    .filter((f) => f !== 'core/errors.ts' && !TOOLS.some((t) => f.startsWith(t)))
    .map((f) => [f, readFileSync(join(SRC, f), 'utf8')] as const);
  for (const [file, text] of texts) {
    for (const code of Object.keys(ERRORS)) if (text.includes(`'${code}'`) && !where.has(code)) where.set(code, file);
    for (const m of text.matchAll(/\bcode:\s*([^,}\n]+)/g)) for (const lit of m[1]!.matchAll(/'([a-z][a-z0-9_]*)'/g)) if (!where.has(lit[1]!)) where.set(lit[1]!, file);
  }
  for (const code of Object.values(RequestErrorCode)) if (!where.has(code)) where.set(code, 'protocol/messages.ts (RequestErrorCode)');
  return where;
}

function documentedCodes(): Map<string, string> {
  const documented = new Map<string, string>();
  for (const r of rows(section('### Errors'))) for (const code of r[0]!.match(/`([a-z_]+)`/g) ?? []) documented.set(code.slice(1, -1), r[1]!);
  return documented;
}

test('README error table lists every error code the code can emit, with its status', () => {
  const documented = documentedCodes();
  const missing = [...emittedCodes()].filter(([code]) => !documented.has(code)).map(([code, file]) => `${code} (emitted in src/${file})`);
  assert.deepEqual(missing, [], `error codes missing from the README error table: ${missing.join(', ')}`);
  for (const [code, spec] of Object.entries(ERRORS)) {
    const status = documented.get(code);
    if (status !== undefined && status !== '—') assert.ok(status.includes(String(spec.status)), `${code}: README says ${status}, code says ${spec.status}`);
  }
});

test('README error table lists no code the code never emits', () => {
  const emitted = emittedCodes();
  const stale = [...documentedCodes().keys()].filter((code) => !emitted.has(code));
  assert.deepEqual(stale, [], `the README documents error codes no shipped module emits: ${stale.join(', ')}`);
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
