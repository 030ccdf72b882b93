// The worker secret, for both commands: from --worker-secret / WORKER_SECRET or a file. An empty
// secret would let anyone in, so it stops the command; a short one, or one on the command line
// (visible to every user in `ps`), is worth a loud warning.
import { readFileSync } from 'node:fs';
import { UsageError, type FlagValues } from './flags.js';

export const MIN_SECRET_LENGTH = 16;

export interface Secret {
  value: string;
  warnings: string[];
}

export function readWorkerSecret(flags: FlagValues, argv: string[]): Secret {
  const direct = flags['worker-secret'] as string | undefined;
  const file = flags['worker-secret-file'] as string | undefined;
  if (direct !== undefined && file !== undefined) throw new UsageError('give --worker-secret or --worker-secret-file, not both');
  let value: string;
  if (file !== undefined) {
    try {
      value = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      throw new UsageError(`cannot read --worker-secret-file ${file}: ${(e as Error).message}`);
    }
  } else {
    value = direct ?? '';
  }
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
