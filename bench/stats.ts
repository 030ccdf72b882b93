// Percentiles and summaries of latency samples (nearest-rank on a sorted copy).

export interface Summary {
  n: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function summarize(values: ArrayLike<number>): Summary {
  const s = Float64Array.from(values).sort();
  let sum = 0;
  for (let i = 0; i < s.length; i++) sum += s[i]!;
  return {
    n: s.length,
    mean: s.length ? sum / s.length : NaN,
    p50: percentile(s, 50),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    p999: percentile(s, 99.9),
    max: s.length ? s[s.length - 1]! : NaN,
  };
}

/** Concatenates sample arrays (one per round) without spreading huge arrays into arguments. */
export function concat(parts: ArrayLike<number>[]): Float64Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Float64Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p as ArrayLike<number>, o);
    o += p.length;
  }
  return out;
}

export const median = (xs: number[]): number => percentile([...xs].sort((a, b) => a - b), 50);

/** Rounds for display and JSON: 3 significant decimals at most. */
export const round = (x: number, digits = 3): number => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x);

/**
 * Interleaved rounds, paired: round i of A ran next to round i of B. The median over pairs of the
 * per-round difference shrugs off a round that another process on the machine disturbed, where a
 * percentile of the pooled samples would not. For an even count it takes the lower middle value, so
 * with 2 pairs a difference must show in both.
 */
export function pairedMedian(a: Summary[], b: Summary[], key: keyof Summary): { a: number; b: number; diff: number } {
  const n = Math.min(a.length, b.length);
  const diffs = Array.from({ length: n }, (_, i) => b[i]![key] - a[i]![key]);
  return { a: median(a.map((s) => s[key])), b: median(b.map((s) => s[key])), diff: median(diffs) };
}
