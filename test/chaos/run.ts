// `npm run chaos -- --secs N --seed S [--clients C] [--workers W] [--max-concurrency K]`: runs the
// chaos soak (soak.ts) against the built fleet and prints its table; exits 1 on any violation.
import { parseArgs } from 'node:util';
import { DEFAULT_SOAK, formatReport, runSoak, violations } from './soak.js';

const { values } = parseArgs({
  options: {
    secs: { type: 'string', default: '60' },
    seed: { type: 'string' },
    clients: { type: 'string', default: String(DEFAULT_SOAK.clients) },
    workers: { type: 'string', default: String(DEFAULT_SOAK.workers) },
    'max-concurrency': { type: 'string', default: String(DEFAULT_SOAK.maxConcurrency) },
    quiet: { type: 'boolean', default: false },
  },
});
const int = (name: string, v: string | undefined): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got ${v}`);
  return n;
};
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : int('seed', values.seed);
const workers = int('workers', values.workers);
if (workers < 2) throw new Error('--workers must be at least 2: a fault never takes every worker of a model');
process.stdout.write(`chaos soak starting: seed ${seed}\n`);
const report = await runSoak({
  ...DEFAULT_SOAK,
  seed,
  secs: int('secs', values.secs),
  clients: int('clients', values.clients),
  workers,
  maxConcurrency: int('max-concurrency', values['max-concurrency']),
  progress: values.quiet ? undefined : (line) => process.stdout.write(`  ${line}\n`),
});
process.stdout.write(`\n${formatReport(report)}\n`);
process.exit(violations(report).length === 0 && report.problems.length === 0 ? 0 : 1);
