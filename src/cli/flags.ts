// One flag table per command: each flag has an env var, a default and a line of help. Parsing
// (node:util parseArgs), env fallback, config-file keys, validation and --help all come from the table.
import { parseArgs } from 'node:util';
import { readConfigFile, type ConfigFile } from './config-file.js';
import { UsageError } from './usage-error.js';

export { UsageError };

/** `list`: a repeatable string flag; its value is every occurrence, in order (env: one string cut at
 * `separator`). Occurrences on the command line replace the env var's list, as for any flag. */
export type FlagKind = 'string' | 'number' | 'boolean' | 'list';

export interface FlagSpec {
  name: string;
  env: string;
  kind: FlagKind;
  default?: string | number | boolean;
  required?: boolean;
  /** Another flag that may stand in for this required one (e.g. a secret read from a file). */
  orFlag?: string;
  /** For a `list`: what separates entries in the env var. */
  separator?: string;
  help: string;
}

export type FlagValue = string | number | boolean | string[];
export type FlagValues = Record<string, FlagValue | undefined>;

/** The flag that names a config file (in a table, it reads the file; in a file, it is not a key). */
export const CONFIG_FLAG = 'config';

export interface ParsedCommand {
  flags: FlagValues;
  /** The flags set by the command line, the environment or the config file (not left to their default). */
  given: Set<string>;
  /** The config file, when one was given: its path, non-flag keys (`extras`) and warnings. */
  file: ConfigFile | undefined;
}

export function parseFlags(specs: FlagSpec[], argv: string[], env: NodeJS.ProcessEnv): FlagValues | 'help' | 'version' {
  const c = parseCommand(specs, argv, env);
  return typeof c === 'string' ? c : c.flags;
}

/** Flags, then env vars, then the config file (--config, if in the table), then defaults. */
export function parseCommand(specs: FlagSpec[], argv: string[], env: NodeJS.ProcessEnv, extraConfigKeys: readonly string[] = []): ParsedCommand | 'help' | 'version' {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = { help: { type: 'boolean' }, version: { type: 'boolean' } };
  for (const s of specs) options[s.name] = s.kind === 'list' ? { type: 'string', multiple: true } : { type: s.kind === 'boolean' ? 'boolean' : 'string' };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: false, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message.split('\n')[0]!);
  }
  if (parsed.values['help']) return 'help';
  if (parsed.values['version']) return 'version';
  const configSpec = specs.find((s) => s.name === CONFIG_FLAG);
  const configPath = configSpec ? ((parsed.values[CONFIG_FLAG] as string | undefined) ?? (env[configSpec.env] || undefined)) : undefined;
  const file = configPath !== undefined ? readConfigFile(configPath, specs.filter((s) => s !== configSpec), extraConfigKeys) : undefined;
  const out: FlagValues = {};
  /** Where each value came from: 3 flag, 2 env var, 1 config file, 0 default. */
  const rank: Record<string, number> = {};
  for (const s of specs) {
    const fromArg = parsed.values[s.name] as string | boolean | string[] | undefined;
    const fromEnv = env[s.env];
    const raw = fromArg ?? (fromEnv !== undefined && fromEnv !== '' ? fromEnv : undefined);
    if (raw === undefined) {
      const fromFile = file?.values[s.name];
      if (fromFile !== undefined) {
        out[s.name] = fromFile;
        rank[s.name] = 1;
        continue;
      }
      const alt = s.orFlag ? specs.find((x) => x.name === s.orFlag) : undefined;
      const altGiven = alt && (parsed.values[alt.name] !== undefined || (env[alt.env] ?? '') !== '' || file?.values[alt.name] !== undefined);
      if (s.required && !altGiven) throw new UsageError(`missing --${s.name} (or ${s.env}${alt ? `, or --${alt.name}` : ''}${configSpec ? `, or '${s.name}' in the --${CONFIG_FLAG} file` : ''})`);
      out[s.name] = s.kind === 'list' ? [] : s.default;
      rank[s.name] = 0;
      continue;
    }
    out[s.name] = convert(s, raw);
    rank[s.name] = fromArg !== undefined ? 3 : 2;
  }
  // A secret and its -file twin given in different places: the higher place wins, as for one flag
  // (WORKER_SECRET in the environment overrides worker-secret-file in the config file).
  for (const s of specs) {
    const twin = `${s.name}-file`;
    if (out[s.name] === undefined || out[twin] === undefined || rank[s.name] === rank[twin]) continue;
    if (rank[s.name]! > rank[twin]!) out[twin] = undefined;
    else out[s.name] = undefined;
  }
  const given = new Set(specs.filter((s) => rank[s.name]! > 0 && out[s.name] !== undefined).map((s) => s.name));
  return { flags: out, given, file };
}

function convert(s: FlagSpec, raw: string | boolean | string[]): FlagValue {
  if (s.kind === 'list') {
    const entries = Array.isArray(raw) ? raw : String(raw).split(s.separator ?? ',');
    return entries.map((e) => e.trim()).filter((e) => e !== '');
  }
  if (Array.isArray(raw)) throw new Error(`--${s.name} is not repeatable`); // parseArgs gives arrays only for lists
  if (s.kind === 'boolean') {
    if (typeof raw === 'boolean') return raw;
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    throw new UsageError(`--${s.name} (${s.env}) must be true or false, got '${raw}'`);
  }
  const text = String(raw);
  if (s.kind === 'number') {
    const n = Number(text);
    if (text.trim() === '' || !Number.isFinite(n) || n < 0) throw new UsageError(`--${s.name} (${s.env}) must be a non-negative number, got '${text}'`);
    return n;
  }
  return text;
}

export function helpText(command: string, summary: string, specs: FlagSpec[]): string {
  const rows = specs.map((s) => {
    const flag = `--${s.name}${s.kind === 'boolean' ? '' : ' <' + (s.kind === 'number' ? 'n' : 'value') + '>'}`;
    const def = s.required ? `required${s.orFlag ? ` (or --${s.orFlag})` : ''}` : s.default === undefined ? 'unset' : `default ${JSON.stringify(s.default)}`;
    const env = s.kind === 'list' ? `env ${s.env} (entries separated by '${s.separator ?? ','}'); repeatable` : `env ${s.env}`;
    return `  ${flag.padEnd(30)} ${s.help}\n  ${''.padEnd(30)} ${env}; ${def}`;
  });
  return `${command}: ${summary}\n\nUsage: ${command} [flags]\n\n${rows.join('\n')}\n  ${'--help'.padEnd(30)} Show this help.\n  ${'--version'.padEnd(30)} Print the version.\n`;
}

/** "host:port", ":port" or "port" → parts; IPv6 hosts in brackets. */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:(?:\[([^\]]+)\]|([^:[\]]*)):)?(\d+)$/.exec(value.trim());
  if (!m) throw new UsageError(`--listen must look like HOST:PORT, got '${value}'`);
  const port = Number(m[3]);
  if (port > 65535) throw new UsageError(`--listen port out of range: ${port}`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

/** A failed listen as a message that names the address and says how to choose another. */
export function listenError(err: unknown, host: string, port: number, howToChoose: string): Error {
  const code = (err as { code?: string }).code;
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  if (code === 'EADDRINUSE') return new Error(`port ${port} is already in use (listening on ${where}); choose another with ${howToChoose}`);
  if (code === 'EACCES') return new Error(`not allowed to listen on ${where} (ports below 1024 need privileges); choose another with ${howToChoose}`);
  return err instanceof Error ? err : new Error(String(err));
}

/** Runs a command's main, turning usage errors into one line on stderr and exit code 2. */
export async function runMain(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`error: ${e.message} (see --help)\n`);
      process.exit(2);
    }
    process.stderr.write(`error: ${(e as Error).message}\n`);
    process.exit(1);
  }
}
