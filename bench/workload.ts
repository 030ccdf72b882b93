// What a workload is: a named module that starts what it needs (through the context), measures, and
// returns table rows plus raw data for results.json. run.ts holds the list; a new mode (say, against
// llama.cpp's llama-server) is one more module in that list.
import type { Backend, Relay, RelayOptions } from './cluster.js';
import type { SpawnOptions } from './procs.js';

export interface BenchContext {
  quick: boolean;
  /** Progress line on stderr. */
  log(msg: string): void;
  startBackend(label?: string, opts?: SpawnOptions): Promise<Backend>;
  startRelay(backendUrl: string, opts?: RelayOptions): Promise<Relay>;
}

export type Unit = 'ms' | 'µs' | 'req/s' | 'chunks/s' | 'MiB' | 'KiB' | 'x' | '';

/** One line of the table. `result` is relay − direct ('added'), relay / direct ('ratio') or a plain value. */
export interface Row {
  metric: string;
  unit: Unit;
  direct?: number;
  relay?: number;
  result?: number;
  resultKind?: 'added' | 'ratio' | 'value';
  /** Human target, e.g. '≤ 0.5 ms'. */
  target?: string;
  meets?: boolean;
}

export interface WorkloadResult {
  rows: Row[];
  notes?: string[];
  data: unknown;
}

export interface Workload {
  name: string;
  title: string;
  run(ctx: BenchContext): Promise<WorkloadResult>;
}

/** A row for an overhead: relay − direct, checked against `max` when given. */
export function addedRow(metric: string, unit: Unit, direct: number, relay: number, max?: number): Row {
  const result = relay - direct;
  return { metric, unit, direct, relay, result, resultKind: 'added', ...(max !== undefined ? { target: `≤ ${max} ${unit}`, meets: result <= max } : {}) };
}

/** A row for an overhead measured in interleaved pairs: columns are medians over rounds, the result
 * the median of the per-pair differences (see stats.pairedMedian). */
export function pairedRow(metric: string, unit: Unit, p: { a: number; b: number; diff: number }, max?: number): Row {
  return { ...addedRow(metric, unit, p.a, p.b, max), result: p.diff, ...(max !== undefined ? { meets: p.diff <= max } : {}) };
}

/** A row for a throughput: relay / direct, checked against `min` when given. */
export function ratioRow(metric: string, unit: Unit, direct: number, relay: number, min?: number): Row {
  const result = relay / direct;
  return { metric, unit, direct, relay, result, resultKind: 'ratio', ...(min !== undefined ? { target: `≥ ${min}x`, meets: result >= min } : {}) };
}
