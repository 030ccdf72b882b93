// Where the worker dials: the relay's worker endpoint under --proxy-url. The URL's path is kept as a
// prefix, so a relay published at https://example.org/relay behind a reverse proxy is reached at
// wss://example.org/relay/v1/worker/connect.
import { WORKER_CONNECT_PATH } from '../protocol/index.js';

const SCHEMES: Record<string, string> = { 'http:': 'ws:', 'https:': 'wss:', 'ws:': 'ws:', 'wss:': 'wss:' };

/** http(s) becomes ws(s); a URL that already ends in the endpoint is taken as it is, and a trailing
 * `/v1` (the base URL clients are given) is tolerated. Throws on a scheme we can't dial. */
export function workerConnectUrl(proxyUrl: string, provider: string): URL {
  const url = new URL(proxyUrl);
  const scheme = SCHEMES[url.protocol];
  if (!scheme) throw new Error(`the relay URL must be http://, https://, ws:// or wss://, got '${proxyUrl}'`);
  // Only the special schemes may change into each other (WHATWG URL), and all four are special.
  url.protocol = scheme;
  let path = url.pathname.replace(/\/+$/, '');
  if (!path.endsWith(WORKER_CONNECT_PATH)) path = path.replace(/\/v1$/, '') + WORKER_CONNECT_PATH;
  url.pathname = path;
  url.hash = '';
  url.searchParams.set('provider', provider);
  return url;
}
