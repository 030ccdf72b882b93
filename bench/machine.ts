// What the numbers were measured on: CPU model, cores, memory, Node version, fd limit, commit, date.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memTotalMb: number;
  node: string;
  os: string;
  openFilesLimit: { soft: number; hard: number };
  gitCommit: string;
  date: string;
  /** 1/5/15-minute load averages at the start: other work on a shared machine shows here. */
  loadAvg: number[];
}

/** The soft and hard RLIMIT_NOFILE of this process, from /proc/self/limits. */
export function openFilesLimit(): { soft: number; hard: number } {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const m = line?.match(/(\d+|unlimited)\s+(\d+|unlimited)/);
    const n = (s: string | undefined): number => (s === undefined || s === 'unlimited' ? Infinity : Number(s));
    return { soft: n(m?.[1]), hard: n(m?.[2]) };
  } catch {
    return { soft: Infinity, hard: Infinity };
  }
}

function cpuModel(): string {
  try {
    const m = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.+)$/m);
    if (m?.[1]) return m[1].trim();
  } catch {
    // not Linux
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

function gitCommit(root: string): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', 'src'], { cwd: root, encoding: 'utf8' }).trim() !== '';
    return dirty ? `${head}+dirty-src` : head;
  } catch {
    return 'unknown';
  }
}

export function machineInfo(root: string): MachineInfo {
  return {
    cpuModel: cpuModel(),
    cores: os.availableParallelism?.() ?? os.cpus().length,
    memTotalMb: Math.round(os.totalmem() / 2 ** 20),
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    openFilesLimit: openFilesLimit(),
    gitCommit: gitCommit(root),
    date: new Date().toISOString(),
    loadAvg: os.loadavg().map((x) => Number(x.toFixed(2))),
  };
}
