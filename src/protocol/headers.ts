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
  // A client's `Expect: 100-continue` is answered by the hop that reads the body (node:http sends
  // the 100 itself); passed on, it makes undici refuse the backend call.
  'expect',
  // Recomputed by whoever writes the body next.
  'content-length',
]);

/** Lower-cased copy of `headers` without hop-by-hop ones (nor those the Connection header names). */
export function forwardableHeaders(
  headers: Record<string, string | string[] | undefined>,
  drop?: ReadonlySet<string>,
): Record<string, string> {
  const out: Record<string, string> = {};
  let listed: Set<string> | undefined;
  for (const rawName in headers) {
    const value = headers[rawName];
    if (value === undefined) continue;
    const name = rawName.toLowerCase();
    if (name === 'connection') {
      // Headers the Connection header names are hop-by-hop too (RFC 9110 §7.6.1).
      listed = new Set(String(value).split(',').map((s) => s.trim().toLowerCase()));
      continue;
    }
    if (HOP_BY_HOP.has(name) || drop?.has(name)) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  if (listed) for (const name of listed) delete out[name];
  return out;
}

/** True when `forwardableHeaders` would drop nothing from these (already lower-case) headers, so
 * they can be passed on as they are: the common case for a frame from our own worker. */
export function allForwardable(headers: Record<string, string>, drop?: ReadonlySet<string>): boolean {
  for (const name in headers) if (HOP_BY_HOP.has(name) || drop?.has(name) || name !== name.toLowerCase()) return false;
  return true;
}
