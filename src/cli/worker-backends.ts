// The worker's backends: one from the single-backend flags (--backend-url, --models, --model-map,
// --max-concurrency, --backend-api-key), or several from the config file's `backends` list, whose
// entries take those keys. Not both: a backend given twice over would be a guess.
import { chooseEgress, parseModelEntries, parseModelMap, type BackendSpec } from '../worker/index.js';
import { checkTable } from './config-file.js';
import type { FlagValues, ParsedCommand } from './flags.js';
import { UsageError } from './usage-error.js';
import { BACKEND_KEYS, WORKER_FLAGS } from './worker-flags.js';

export const BACKENDS_KEY = 'backends';

const ENTRY_SPECS = WORKER_FLAGS.filter((s) => (BACKEND_KEYS as readonly string[]).includes(s.name));

export function workerBackends(parsed: ParsedCommand, relayUrl: URL, env: NodeJS.ProcessEnv): BackendSpec[] {
  const list = parsed.file?.extras[BACKENDS_KEY];
  if (list === undefined) return [backend(parsed.flags, relayUrl, env, (k) => `--${k}`)];
  const file = parsed.file!.path;
  const clash = BACKEND_KEYS.filter((k) => parsed.given.has(k));
  if (clash.length > 0) {
    throw new UsageError(`${file} lists ${BACKENDS_KEY}, so ${clash.map((k) => `--${k}`).join(', ')} (a flag, env var or key of the file) can't also be given: put it in an entry of ${BACKENDS_KEY}`);
  }
  if (!Array.isArray(list) || list.length === 0 || !list.every((e) => typeof e === 'object' && e !== null && !Array.isArray(e))) {
    throw new UsageError(`${file}: ${BACKENDS_KEY} must be a non-empty list of tables ([[${BACKENDS_KEY}]] in TOML), each with ${BACKEND_KEYS.join(', ')}`);
  }
  return list.map((entry, i) => {
    const where = `${file}: ${BACKENDS_KEY}[${i}]`;
    const values = checkTable(entry as Record<string, unknown>, ENTRY_SPECS, where);
    if (values['backend-url'] === undefined) throw new UsageError(`${where}: backend-url is required`);
    const defaults = Object.fromEntries(ENTRY_SPECS.map((s) => [s.name, s.kind === 'list' ? [] : s.default]));
    return backend({ ...defaults, ...values }, relayUrl, env, (k) => `${where}: ${k}`);
  });
}

function backend(values: FlagValues, relayUrl: URL, env: NodeJS.ProcessEnv, name: (key: string) => string): BackendSpec {
  const url = values['backend-url'] as string;
  if (!URL.canParse(url)) throw new UsageError(`${name('backend-url')} must be a URL, got '${url}'`);
  const text = (values['models'] as string).trim();
  const models = text === 'auto' || text === '*' || text === '' ? 'auto' : text.split(',').map((m) => m.trim()).filter(Boolean);
  const modelMap = (values['model-map'] as string[] | undefined) ?? [];
  const check = (key: string, parse: () => unknown): void => {
    try {
      parse();
    } catch (e) {
      throw new UsageError(`${name(key)}: ${(e as Error).message}`);
    }
  };
  if (models !== 'auto') check('models', () => parseModelEntries(models));
  check('model-map', () => parseModelMap(modelMap));
  if (models !== 'auto' && modelMap.length > 0) throw new UsageError(`${name('model-map')} renames discovered models (models auto); with a list, write PUBLIC=BACKEND entries in ${name('models')}`);
  const maxConcurrency = Math.floor(values['max-concurrency'] as number);
  if (maxConcurrency < 1) throw new UsageError(`${name('max-concurrency')} must be at least 1`);
  let egress: BackendSpec['egress'];
  try {
    egress = chooseEgress(relayUrl, new URL(url), undefined, env).backend;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  return { url, models, modelMap, maxConcurrency, apiKey: values['backend-api-key'] as string | undefined, egress };
}
