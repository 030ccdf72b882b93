// Output: the results table (plain text on stdout, Markdown for the README) and results.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { MachineInfo } from './machine.js';
import type { Row, WorkloadResult } from './workload.js';

export interface RunReport {
  machine: MachineInfo;
  mode: 'quick' | 'full';
  durationSecs: number;
  workloads: Record<string, WorkloadResult & { title: string; secs: number; error?: string }>;
}

function num(x: number | undefined, unit: string): string {
  if (x === undefined || !Number.isFinite(x)) return x === undefined ? '' : String(x);
  const a = Math.abs(x);
  const s = a >= 1000 ? x.toFixed(0) : a >= 100 ? x.toFixed(1) : a >= 10 ? x.toFixed(2) : x.toFixed(3);
  return unit && unit !== 'x' ? `${s} ${unit}` : s;
}

function cells(r: Row): string[] {
  // a plain value measured on one path already shows in that path's column
  const shown = r.resultKind === 'value' && (r.relay !== undefined || r.direct !== undefined);
  const result = shown ? '' :
    r.result === undefined ? '' : r.resultKind === 'ratio' ? `${r.result.toFixed(2)}x` : r.resultKind === 'added' ? `+${num(r.result, r.unit)}`.replace('+-', '−') : num(r.result, r.unit);
  return [r.metric, num(r.direct, r.unit), num(r.relay, r.unit), result, r.target ?? '', r.meets === undefined ? '' : r.meets ? 'yes' : 'NO'];
}

const HEAD = ['metric', 'direct', 'relay', 'relay − direct / ratio', 'target', 'meets'];

function lines(report: RunReport): { title: string; rows: string[][]; notes: string[] }[] {
  return Object.values(report.workloads).map((w) => ({
    title: w.title + (w.error ? ` — FAILED: ${w.error}` : ''),
    rows: w.rows.map(cells),
    notes: w.notes ?? [],
  }));
}

export function textTable(report: RunReport): string {
  const sections = lines(report);
  const all = [HEAD, ...sections.flatMap((s) => s.rows)];
  const widths = HEAD.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const fmt = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const out = [fmt(HEAD)];
  for (const s of sections) {
    out.push('', `== ${s.title}`);
    for (const r of s.rows) out.push(fmt(r));
    for (const n of s.notes) out.push(`   note: ${n}`);
  }
  return out.join('\n');
}

export function markdownTable(report: RunReport): string {
  const m = report.machine;
  const out = [`Measured ${m.date.slice(0, 10)} on ${m.cpuModel}, ${m.cores} cores, Node ${m.node} (${report.mode} run, commit ${m.gitCommit}).`, ''];
  out.push(`| ${HEAD.join(' | ')} |`, `|${HEAD.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`);
  for (const s of lines(report)) {
    out.push(`| **${s.title}** |${' |'.repeat(HEAD.length - 1)}`);
    for (const r of s.rows) out.push(`| ${r.join(' | ')} |`);
  }
  return out.join('\n');
}

export function writeJson(path: string, report: RunReport): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(report, (_k, v: unknown) => (v instanceof Float64Array ? Array.from(v) : v), 2) + '\n');
}
