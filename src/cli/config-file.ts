// Configuration files (--config FILE): TOML or JSON by the file's extension, with the flags' names
// (without the leading `--`) as keys, so every flag has a config key with no table of its own. A
// file's value ranks below the flag and the env var and above the default. A key that is not a flag
// (a typo) or a value of the wrong kind stops the command with the file, the key and what is allowed.
import { readFileSync, statSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import type { FlagSpec, FlagValue } from './flags.js';
import { UsageError } from './usage-error.js';

export interface ConfigFile {
  path: string;
  /** Flag values the file gives, already checked and converted. */
  values: Record<string, FlagValue>;
  /** Keys the caller allowed besides the flags (e.g. the worker's `backends`), unchecked. */
  extras: Record<string, unknown>;
  warnings: string[];
}

/** Keys whose values are secrets: a file holding one should be readable by its owner only. */
const SECRET_KEYS = new Set(['worker-secret', 'admin-token', 'backend-api-key']);

export function readConfigFile(path: string, specs: FlagSpec[], extraKeys: readonly string[] = []): ConfigFile {
  const ext = extname(path).toLowerCase();
  if (ext !== '.toml' && ext !== '.json') throw new UsageError(`--config ${path}: the file must end in .toml or .json (its format)`);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read --config ${path}: ${(e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = ext === '.toml' ? parseToml(text) : JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${path}: not valid ${ext === '.toml' ? 'TOML' : 'JSON'}: ${(e as Error).message.split('\n')[0]}`);
  }
  if (!isTable(doc)) throw new UsageError(`${path}: the file must hold a table of keys (a JSON object)`);
  const extras: Record<string, unknown> = {};
  const flagPart: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(doc)) (extraKeys.includes(k) ? extras : flagPart)[k] = v;
  const values = checkTable(flagPart, specs, path, extraKeys);
  const warnings: string[] = [];
  const secrets = Object.keys(values).filter((k) => SECRET_KEYS.has(k));
  if (secrets.length > 0 && process.platform !== 'win32' && (statSync(path).mode & 0o044) !== 0) {
    warnings.push(`${path} holds ${secrets.join(', ')} and other users can read it: chmod 600 ${path}`);
  }
  return { path, values, extras, warnings };
}

/**
 * Checks one table of flag keys (the file, or an entry of a list of tables such as a backend) and
 * converts its values; `where` names it in errors ("worker.toml: backends[1]").
 */
export function checkTable(table: Record<string, unknown>, specs: FlagSpec[], where: string, otherKeys: readonly string[] = []): Record<string, FlagValue> {
  const out: Record<string, FlagValue> = {};
  const names = specs.map((s) => s.name);
  for (const [key, value] of Object.entries(table)) {
    const spec = specs.find((s) => s.name === key);
    if (!spec) {
      const bare = key.replace(/^--/, '');
      const near = [...names, ...otherKeys].find((n) => distance(n, bare) <= 2 || (bare.length >= 4 && (n.startsWith(bare) || bare.startsWith(n))));
      throw new UsageError(`${where}: unknown key '${key}'${near ? ` (did you mean '${near}'?)` : ''}; allowed keys: ${[...names, ...otherKeys].join(', ')}`);
    }
    out[key] = checkValue(spec, value, `${where}: key '${key}'`);
  }
  return out;
}

function checkValue(spec: FlagSpec, value: unknown, where: string): FlagValue {
  const got = `got ${JSON.stringify(value) ?? String(value)}`;
  switch (spec.kind) {
    case 'boolean':
      if (typeof value === 'boolean') return value;
      throw new UsageError(`${where} must be true or false, ${got}`);
    case 'number': {
      const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
      if (typeof n === 'number' && Number.isFinite(n) && n >= 0) return n;
      throw new UsageError(`${where} must be a non-negative number, ${got}`);
    }
    case 'list': {
      // A repeatable flag: a list of strings, or one string cut at its separator as in the env var.
      const entries = Array.isArray(value) && value.every((v) => typeof v === 'string') ? value : typeof value === 'string' ? value.split(spec.separator ?? ',') : undefined;
      if (entries) return entries.map((e) => e.trim()).filter((e) => e !== '');
      throw new UsageError(`${where} must be a list of strings, ${got}`);
    }
    default: {
      // A comma-separated flag (models, extra-endpoints, ...) may be written as a list of strings.
      if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value.join(',');
      if (typeof value === 'string') return value;
      if (typeof value === 'number') return String(value);
      throw new UsageError(`${where} must be a string (a list of strings is joined with commas), ${got}`);
    }
  }
}

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}
