// Which HTTP headers cross the relay: hop-by-hop headers belong to one connection and never do.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  // Recomputed by whoever writes the body next.
  'content-length',
]);

/** Lower-cased copy of `headers` without hop-by-hop ones (nor those the Connection header names). */
export function forwardableHeaders(
  headers: Record<string, string | string[] | undefined>,
  drop?: ReadonlySet<string>,
): Record<string, string> {
  const out: Record<string, string> = {};
  const named = headers['connection'] ?? Object.entries(headers).find(([k]) => k.toLowerCase() === 'connection')?.[1];
  const listed = new Set(
    (Array.isArray(named) ? named.join(',') : (named ?? ''))
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean),
  );
  for (const [rawName, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const name = rawName.toLowerCase();
    if (HOP_BY_HOP.has(name) || listed.has(name) || drop?.has(name)) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}
