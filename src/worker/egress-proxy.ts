// Which proxy, if any, each of the worker's two ways out takes: the WebSocket to the relay and the HTTP
// calls to the backend. The conventions of curl, git and pip: HTTPS_PROXY for https/wss targets,
// HTTP_PROXY for http/ws, ALL_PROXY as the fallback (lower case wins over upper), NO_PROXY for the
// exceptions; --egress-proxy URL|none overrides them for the relay. Chosen once, at start. Also here:
// the agents that tunnel the WebSocket, and the wording of a failure through a proxy.
import type { Agent } from 'node:http';
import { BlockList, isIP } from 'node:net';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { SocksProxyAgent } from 'socks-proxy-agent';

export interface ProxyChoice {
  /** The proxy to go through; undefined = direct. */
  proxy: URL | undefined;
  /** Where the choice came from (a variable or the flag), or why there is no proxy. */
  reason: string;
}

export interface EgressRoutes {
  relay: ProxyChoice;
  backend: ProxyChoice;
}

export const DIRECT: EgressRoutes = { relay: { proxy: undefined, reason: 'default' }, backend: { proxy: undefined, reason: 'default' } };

const PROXY_SCHEMES = new Set(['http:', 'https:', 'socks5:', 'socks5h:']);

/** Both routes from the relay URL, the backend URL, the --egress-proxy flag (URL or 'none') and the
 * environment. Throws on a proxy URL that can't be used, naming where it came from. */
export function chooseEgress(relayUrl: URL, backendUrl: URL, override: string | undefined, env: NodeJS.ProcessEnv): EgressRoutes {
  let relay: ProxyChoice;
  if (override === undefined) relay = fromEnv(relayUrl, env);
  else if (override.trim().toLowerCase() === 'none') relay = { proxy: undefined, reason: '--egress-proxy none' };
  else relay = { proxy: parseProxyUrl(override, '--egress-proxy'), reason: '--egress-proxy' };
  return { relay, backend: fromEnv(backendUrl, env) };
}

function fromEnv(target: URL, env: NodeJS.ProcessEnv): ProxyChoice {
  const secure = target.protocol === 'https:' || target.protocol === 'wss:';
  const names = [...(secure ? ['https_proxy', 'HTTPS_PROXY'] : ['http_proxy', 'HTTP_PROXY']), 'all_proxy', 'ALL_PROXY'];
  const name = names.find((n) => env[n]?.trim());
  if (!name) return { proxy: undefined, reason: 'no proxy variable set' };
  const noProxy = env['no_proxy'] || env['NO_PROXY'];
  if (noProxy && matchesNoProxy(target, noProxy)) return { proxy: undefined, reason: 'NO_PROXY' };
  return { proxy: parseProxyUrl(env[name]!, name), reason: name };
}

/** A proxy URL; a bare `host:port` means http:// (as curl takes it). */
export function parseProxyUrl(value: string, source: string): URL {
  const text = value.trim();
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`);
  } catch {
    throw new Error(`${source} is not a URL: '${text.replace(/\/\/[^@/]*@/, '//***@')}'`);
  }
  if (!PROXY_SCHEMES.has(url.protocol) || !url.hostname) {
    throw new Error(`${source} must be an http://, https://, socks5:// or socks5h:// proxy URL, got '${redact(url)}'`);
  }
  return url;
}

/** The proxy URL for logs: its password (if any) replaced by ***. */
export function redact(url: URL): string {
  const user = url.username ? `${url.username}${url.password ? ':***' : ''}@` : '';
  return `${url.protocol}//${user}${url.host}`;
}

export function describe(choice: ProxyChoice): string {
  return choice.proxy ? `${redact(choice.proxy)} (${choice.reason})` : `direct (${choice.reason})`;
}

/** NO_PROXY: commas or spaces between entries; `*` matches all; `example.org` and `.example.org`
 * match the domain and its subdomains; IPs and CIDRs (v4 and v6) match addresses; `:port` narrows
 * an entry to one port. Names are compared as written, never resolved. */
export function matchesNoProxy(target: URL, list: string): boolean {
  const host = target.hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
  const port = target.port || (target.protocol === 'https:' || target.protocol === 'wss:' ? '443' : '80');
  const hostFamily = isIP(host);
  for (const raw of list.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return true;
    const { name, entryPort } = splitPort(entry);
    if (entryPort !== undefined && entryPort !== port) continue;
    const slash = name.indexOf('/');
    const addr = slash < 0 ? name : name.slice(0, slash);
    const family = isIP(addr);
    if (family) {
      if (family !== hostFamily) continue;
      const bits = slash < 0 ? (family === 4 ? 32 : 128) : Number(name.slice(slash + 1));
      if (!Number.isInteger(bits)) continue;
      const block = new BlockList();
      const type = family === 4 ? 'ipv4' : 'ipv6';
      try {
        block.addSubnet(addr, bits, type);
      } catch {
        continue; // a prefix length out of range: not an entry we can use
      }
      if (block.check(host, type)) return true;
      continue;
    }
    const domain = name.replace(/^\*?\./, '').replace(/\.$/, '');
    if (domain && (host === domain || host.endsWith(`.${domain}`))) return true;
  }
  return false;
}

/** `host:port`, `[v6]:port`, `[v6]`, a bare v6 address or CIDR (no port), or a name. */
function splitPort(entry: string): { name: string; entryPort: string | undefined } {
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  if (bracket) return { name: bracket[1]!, entryPort: bracket[2] };
  const colons = entry.split(':').length - 1;
  if (colons === 1) {
    const [name, p] = entry.split(':') as [string, string];
    if (/^\d+$/.test(p)) return { name, entryPort: p };
  }
  return { name: entry, entryPort: undefined };
}

/** Whether a URL's host is this machine: a backend there rarely belongs behind a proxy. */
export function isLoopback(url: URL): boolean {
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return host === 'localhost' || host.endsWith('.localhost') || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

/** The http.Agent that carries the WebSocket through the proxy: an HTTP CONNECT tunnel (TLS to the
 * relay inside it for wss://, verified as without a proxy), or SOCKS5. Credentials come from the URL. */
export function tunnelAgent(proxy: URL): Agent {
  return proxy.protocol.startsWith('socks') ? new SocksProxyAgent(proxy) : new HttpsProxyAgent(proxy);
}

/** Failures to reach a host at all (as opposed to a refusal or a TLS error). */
const UNREACHABLE = /\b(ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|EAI_AGAIN)\b/;

/** The log message for a failure, through a proxy, before the WebSocket opened. */
export function tunnelFailure(err: Error): string {
  // The SOCKS client passes a socket's failure on as a message, without its code.
  if (UNREACHABLE.test(`${(err as { code?: string }).code} ${err.message}`)) return 'the egress proxy is unreachable';
  if (/^socks/i.test(err.message)) return 'the egress proxy refused the tunnel to the relay';
  return 'could not connect to the relay through the egress proxy';
}

/** What to check when an HTTP proxy answers CONNECT with `status` (undefined: nothing to add). */
export function refusalHint(status: number): string | undefined {
  if (status === 407) return 'check the user and password in the proxy URL';
  if (status === 403) return 'the proxy does not allow this destination';
  return undefined;
}
