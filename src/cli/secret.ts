// Secrets for both commands (the worker secret; the server's admin token): from a flag, its env
// var, a config file, or a file of their own (--worker-secret-file, --admin-token-file). An empty
// secret would let anyone in, so it stops the command; a short one, or one on the command line
// (visible to every user in `ps`), is worth a loud warning.
import { readFileSync } from 'node:fs';
import { UsageError, type FlagValues } from './flags.js';

export const MIN_SECRET_LENGTH = 16;

export interface Secret {
  value: string;
  warnings: string[];
}

/** The value of `--NAME` or of the file `--NAME-file` names (not both); undefined if neither. */
export function secretFlag(flags: FlagValues, name: string): { value: string; file: string | undefined } | undefined {
  const direct = flags[name] as string | undefined;
  const file = flags[`${name}-file`] as string | undefined;
  if (direct !== undefined && file !== undefined) throw new UsageError(`give --${name} or --${name}-file, not both`);
  if (file === undefined) return direct === undefined ? undefined : { value: direct, file };
  try {
    return { value: readFileSync(file, 'utf8').replace(/\r?\n$/, ''), file };
  } catch (e) {
    throw new UsageError(`cannot read --${name}-file ${file}: ${(e as Error).message}`);
  }
}

export function readWorkerSecret(flags: FlagValues, argv: string[]): Secret {
  const given = secretFlag(flags, 'worker-secret');
  const value = given?.value ?? '';
  const file = given?.file;
  if (value.trim() === '') {
    throw new UsageError(`the worker secret is empty${file !== undefined ? ` (file ${file})` : ''}: set --worker-secret, WORKER_SECRET or --worker-secret-file to a long random string, e.g. $(openssl rand -hex 32)`);
  }
  const warnings: string[] = [];
  if (value.length < MIN_SECRET_LENGTH) warnings.push(`the worker secret is only ${value.length} characters long: use ${MIN_SECRET_LENGTH} or more random characters (e.g. openssl rand -hex 32)`);
  if (argv.some((a) => a === '--worker-secret' || a.startsWith('--worker-secret='))) {
    warnings.push('the worker secret was given on the command line, where other users of this machine can read it (ps): prefer WORKER_SECRET or --worker-secret-file');
  }
  return { value, warnings };
}
