// Who is on the other end of a request. Behind your own reverse proxies (--trust-proxy), the client
// is the address the outermost trusted proxy saw: counting `hops` entries from the RIGHT of
// X-Forwarded-For, because each proxy appends what it saw and only the entries our proxies added can
// be believed; anything further left was written by the client. Without --trust-proxy, the socket.
import type { IncomingMessage } from 'node:http';

export interface TrustedProxies {
  /** Honour X-Forwarded-For at all. */
  trust: boolean;
  /** How many proxies of ours sit in front of the relay (each appends one entry). */
  hops: number;
}

export function clientAddress(req: IncomingMessage, proxies: TrustedProxies): string {
  const socketAddr = req.socket.remoteAddress ?? 'unknown';
  if (!proxies.trust || proxies.hops < 1) return socketAddr;
  const header = req.headers['x-forwarded-for'];
  if (header === undefined) return socketAddr;
  const entries = (Array.isArray(header) ? header.join(',') : header)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (entries.length === 0) return socketAddr;
  // hops = 1: the right-most entry (what our one proxy saw). Fewer entries than hops: the furthest
  // one there is (the chain is shorter than configured; every entry in it came from our proxies).
  return entries[Math.max(0, entries.length - proxies.hops)]!;
}
