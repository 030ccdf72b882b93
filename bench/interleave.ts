// Interleaved measurement: short rounds that alternate between the variants (direct, relay, ...)
// with the order rotated every pair (A B, B A, ...), so drift and noise of a shared machine hit
// every variant alike and cancel in the difference.

export async function interleave<V extends string, T>(
  variants: readonly V[],
  pairs: number,
  round: (variant: V, index: number) => Promise<T>,
): Promise<Record<V, T[]>> {
  const out = Object.fromEntries(variants.map((v) => [v, [] as T[]])) as Record<V, T[]>;
  for (let p = 0; p < pairs; p++) {
    const order = p % 2 === 0 ? variants : [...variants].reverse();
    for (const v of order) out[v].push(await round(v, p));
  }
  return out;
}
