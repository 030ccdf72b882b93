// CPU time actually spent by each process (user + system, from /proc/<pid>/stat; this process via
// process.cpuUsage), so a round can report CPU per request or per chunk: a figure far less disturbed
// by other load on a shared machine than latency is.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticksPerSec: number | undefined;

function clockTicks(): number {
  if (ticksPerSec === undefined) {
    try {
      ticksPerSec = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSec = 100;
    }
  }
  return ticksPerSec;
}

/** User + system CPU milliseconds a process has used so far. */
export function cpuMs(pid: number): number {
  if (pid === process.pid) {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  }
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields 14 and 15 of stat(5) (utime, stime); `fields` starts at field 3
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks();
}

/** Runs `fn` and returns its result with the CPU ms each named process used meanwhile. */
export async function withCpu<T>(pids: Record<string, number>, fn: () => Promise<T>): Promise<{ result: T; cpuMs: Record<string, number> }> {
  const before = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuMs(pid)]));
  const result = await fn();
  const cpu = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuMs(pid) - before[k]!]));
  return { result, cpuMs: cpu };
}

/** Sums per-process CPU over rounds and divides by the work done: µs per unit. */
export function cpuPerUnit(rounds: { cpuMs: Record<string, number> }[], units: number): Record<string, number> {
  const sum: Record<string, number> = {};
  for (const r of rounds) for (const [k, v] of Object.entries(r.cpuMs)) sum[k] = (sum[k] ?? 0) + v;
  return Object.fromEntries(Object.entries(sum).map(([k, v]) => [k, units > 0 ? (v * 1000) / units : NaN]));
}
