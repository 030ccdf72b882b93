// Reads a V8 .cpuprofile (node --cpu-prof) and summarises where the time went: top functions by self
// time, time per area (our dist/ modules, each npm package, node internals, GC, idle), and inclusive
// time of our own functions. CLI: node --import tsx bench/profile-summary.ts FILE.cpuprofile...
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface Entry {
  name: string;
  ms: number;
  pct: number;
}

export interface ProfileSummary {
  file: string;
  wallMs: number;
  /** Time not idle: what the process spent on the CPU (approximately). */
  busyMs: number;
  self: Entry[];
  areas: Entry[];
  /** Our dist/ functions by inclusive time (with everything they call). */
  inclusive: Entry[];
}

const META = new Set(['(idle)', '(program)', '(garbage collector)', '(root)']);

function fnKey(n: ProfileNode): string {
  const { functionName, url, lineNumber } = n.callFrame;
  const name = functionName || '(anonymous)';
  if (!url) return name;
  const short = url.replace(/^file:\/\/.*?\/(dist|node_modules)\//, '$1/').replace(/^node:internal\//, 'node:');
  return `${name} ${short}:${lineNumber + 1}`;
}

export function areaOf(n: ProfileNode): string {
  const { functionName, url } = n.callFrame;
  if (META.has(functionName)) return functionName;
  if (!url) return '(native)';
  const pkg = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
  if (pkg) return `npm:${pkg[1]}`;
  const ours = url.match(/\/dist\/(.+?)\.js$/);
  if (ours) return `ours:${ours[1]}`;
  const internal = url.match(/^node:(?:internal\/)?([^/]+(?:\/[^/]+)?)/);
  if (internal) return `node:${internal[1]!.replace(/\/.*$/, '')}`;
  return url;
}

function top(m: Map<string, number>, total: number, n: number): Entry[] {
  return [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, us]) => ({ name, ms: Math.round(us / 100) / 10, pct: Math.round((us / total) * 1000) / 10 }));
}

export function summarizeProfile(file: string, n = 25): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((x) => [x.id, x]));
  const parent = new Map<number, number>();
  for (const x of p.nodes) for (const c of x.children ?? []) parent.set(c, x.id);
  const self = new Map<string, number>();
  const areas = new Map<string, number>();
  const incl = new Map<string, number>();
  let idle = 0;
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const node = byId.get(p.samples[i]!)!;
    const dt = p.timeDeltas[i] ?? 0;
    total += dt;
    if (node.callFrame.functionName === '(idle)') {
      idle += dt;
      continue;
    }
    const k = fnKey(node);
    self.set(k, (self.get(k) ?? 0) + dt);
    const a = areaOf(node);
    areas.set(a, (areas.get(a) ?? 0) + dt);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const x = byId.get(id)!;
      if (!x.callFrame.url.includes('/dist/')) continue;
      const key = fnKey(x);
      if (seen.has(key)) continue;
      seen.add(key);
      incl.set(key, (incl.get(key) ?? 0) + dt);
    }
  }
  const busy = total - idle;
  return {
    file,
    wallMs: Math.round(total / 1000),
    busyMs: Math.round(busy / 1000),
    self: top(self, busy, n),
    areas: top(areas, busy, n),
    inclusive: top(incl, busy, n),
  };
}

export function formatSummary(s: ProfileSummary, n = 20): string {
  const table = (title: string, es: Entry[]): string =>
    [`  ${title}`, ...es.slice(0, n).map((e) => `    ${e.pct.toFixed(1).padStart(5)}%  ${String(e.ms).padStart(8)} ms  ${e.name}`)].join('\n');
  return [
    `${s.file}: ${s.wallMs} ms wall, ${s.busyMs} ms busy (${((s.busyMs / Math.max(1, s.wallMs)) * 100).toFixed(0)}%); percentages of busy time`,
    table('self time by function', s.self),
    table('self time by area', s.areas),
    table('inclusive time, our functions', s.inclusive),
  ].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const f of process.argv.slice(2)) process.stdout.write(`${formatSummary(summarizeProfile(f))}\n\n`);
}
