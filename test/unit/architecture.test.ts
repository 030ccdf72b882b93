// Keeps the rooms' one-way doors: protocol imports nothing of ours, core only protocol, server and
// worker never import each other, no module imports the CLI, and each outside library that stands
// for a concept (SQLite, Prometheus) is used in its own room only.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

const ALLOWED: Record<string, string[]> = {
  protocol: [],
  core: ['protocol'],
  store: [],
  auth: ['store'],
  telemetry: ['protocol', 'core', 'store', '(root)'],
  server: ['protocol', 'core', 'store', 'auth', 'telemetry', '(root)'],
  worker: ['protocol', '(root)'],
  'mock-backend': ['(root)'],
  llama: ['(root)'],
  cli: ['protocol', 'core', 'store', 'auth', 'telemetry', 'server', 'worker', 'mock-backend', 'llama', '(root)'],
  '(root)': [],
};

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

const roomOf = (file: string): string => {
  const rel = relative(SRC, file).split('/');
  return rel.length === 1 ? '(root)' : rel[0]!;
};

test('modules import only across allowed edges', () => {
  const bad: string[] = [];
  for (const file of files(SRC)) {
    const from = roomOf(file);
    for (const m of readFileSync(file, 'utf8').matchAll(/(?:from|import\()\s*'(\.[^']+)'/g)) {
      const to = roomOf(resolve(dirname(file), m[1]!));
      if (to !== from && !ALLOWED[from]?.includes(to)) bad.push(`${relative(SRC, file)} → ${m[1]} (${from} → ${to})`);
    }
  }
  assert.deepEqual(bad, []);
});

test('SQLite is known only to the store, prom-client only to telemetry', () => {
  const owner: Record<string, string> = { 'better-sqlite3': 'store', 'prom-client': 'telemetry' };
  const bad: string[] = [];
  for (const file of files(SRC)) {
    for (const m of readFileSync(file, 'utf8').matchAll(/(?:from|import\()\s*'([^.'][^']*)'/g)) {
      const room = owner[m[1]!];
      if (room && roomOf(file) !== room) bad.push(`${relative(SRC, file)} imports ${m[1]}`);
    }
  }
  assert.deepEqual(bad, []);
});
